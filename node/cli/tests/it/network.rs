//! End-to-end tests of several nodes on 127.0.0.1: in process, and a real
//! `acp node` process where one is killed with SIGKILL.

use std::collections::BTreeSet;

use crate::harness::*;
use acp_protocol::resolve::Exclusion;
use acp_protocol::{ContentId, Keypair, PublicKey, Stance, Timestamp};

/// An in-process node of `DOMAIN` with agent `agent`, listening on TCP and
/// QUIC on loopback.
fn node(agent: &Keypair, bootstrap: &[&str]) -> TestNode {
    let mut cfg = loopback_config(&[DOMAIN]);
    cfg.listen.push("/ip4/127.0.0.1/udp/0/quic-v1".into());
    TestNode::ephemeral(cfg, agent.clone(), bootstrap)
}

/// A proposal made on one node reaches all three; the responses submitted on
/// the other two are counted everywhere, every node (each its
/// organization's attestor) signs a receipt of the same result, and the
/// three receipts certify it on every node.
#[test]
fn three_nodes_agree_on_a_proposal() {
    let keys: Vec<Keypair> = (0..3).map(|_| fresh_key()).collect();
    let n1 = node(&keys[0], &[]);
    let n2 = node(&keys[1], &[&n1.tcp]);
    // n3 joins over QUIC, n2 over TCP.
    let n3 = node(&keys[2], &[n1.quic.as_deref().unwrap()]);
    wait_until(20, "mesh", || (n1.peers() >= 2).then_some(()));

    let agents: Vec<&Keypair> = keys.iter().collect();
    let pol = orgs_policy(DOMAIN, &agents, &[], None);
    genesis_everywhere(&[&n1, &n2, &n3], pol.id, &pol.bytes, 0);
    let (p, p_bytes) = proposal(&keys[0], pol.id, 4_000);
    n1.submit(&p_bytes);
    for n in [&n2, &n3] {
        wait_until(15, "proposal everywhere", || n.has(&p).engine.then_some(()));
    }
    n2.submit(&response(&keys[1], p, Stance::Endorse).1);
    n3.submit(&response(&keys[2], p, Stance::Endorse).1);

    let r = identical_receipts(&[&n1, &n2, &n3], &p, 3, 30);
    assert_eq!(r.status, Status::Approved, "{r:?}");
    assert_eq!(r.counted, 2, "{r:?}");
    assert_eq!(r.finality.certified_by, 3, "{r:?}");
    assert_eq!(r.finality.quorum, 3, "{r:?}");
    assert_eq!(
        r.finality.summary,
        "certified by 3 of 3 organizations: approved"
    );
    let roots: Vec<ContentId> = [&n1, &n2, &n3]
        .iter()
        .map(|n| n.resolution(&p).counted_root)
        .collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    // Same set everywhere (receipts included).
    same_set(&[&n1, &n2, &n3], 15);
}

/// Two groups that cannot reach each other each accept messages; after they
/// connect, anti-entropy alone (no new gossip of the old messages) brings
/// every node to the same set and the same certificate.
#[test]
fn partition_heals_through_sync() {
    let keys: Vec<Keypair> = (0..3).map(|_| fresh_key()).collect();
    // Group A: n1 + n2. Group B: n3 alone.
    let n1 = node(&keys[0], &[]);
    let n2 = node(&keys[1], &[&n1.tcp]);
    let n3 = node(&keys[2], &[]);
    wait_until(20, "group A connected", || (n1.peers() == 1).then_some(()));
    assert_eq!(n3.peers(), 0);

    let agents: Vec<&Keypair> = keys.iter().collect();
    let pol = orgs_policy(DOMAIN, &agents, &[], None);
    let (p, p_bytes) = proposal(&keys[0], pol.id, 6_000);
    for n in [&n1, &n2, &n3] {
        n.anchor(pol.id);
    }
    // The policy and proposal are known on both sides of the partition.
    for n in [&n1, &n3] {
        n.submit(&pol.bytes);
        n.submit(&p_bytes);
    }
    let (r2, r2_bytes) = response(&keys[1], p, Stance::Endorse);
    let (r3, r3_bytes) = response(&keys[2], p, Stance::Endorse);
    // A local response is refused until its proposal is there.
    wait_until(15, "the proposal on n2", || n2.has(&p).engine.then_some(()));
    n2.submit(&r2_bytes);
    n3.submit(&r3_bytes);
    wait_until(10, "r2 within group A", || n1.has(&r2).engine.then_some(()));
    assert!(!n3.has(&r2).engine && !n1.has(&r3).engine && !n2.has(&r3).engine);

    // Heal.
    n3.dial(&n1.tcp);
    wait_until(15, "r3 reaches group A and r2 reaches n3", || {
        (n1.has(&r3).engine && n2.has(&r3).engine && n3.has(&r2).engine && n3.has(&r2).store)
            .then_some(())
    });
    let r = identical_receipts(&[&n1, &n2, &n3], &p, 3, 30);
    assert_eq!(r.status, Status::Approved, "{r:?}");
    assert_eq!(r.counted, 2, "{r:?}");
    same_set(&[&n1, &n2, &n3], 15);
    let synced = sample(
        &n3.metrics(),
        "acp_messages_accepted_total{origin=\"sync\"}",
    );
    assert!(
        synced.unwrap_or(0.0) >= 1.0,
        "n3 should have caught up through sync"
    );
}

/// `kill -9` a node while it receives local submissions and gossip: after a
/// restart it still holds every message it acknowledged (its trust anchor,
/// added through the API, came back from config.toml, so the store replays),
/// and it catches up on what it missed once it reconnects.
#[test]
fn crash_loses_nothing_acknowledged() {
    let d1 = DataDir::new();
    let d2 = DataDir::new();
    // The node that crashes is a real process (kill -9 is the point); its
    // peer runs in process.
    let n1 = d1.start(&[]);
    let mut n2 = d2.process(&[&n1.tcp]);
    wait_until(20, "connected", || (n1.peers() == 1).then_some(()));
    // Many voters, members of the policy, alternately submitted on n2
    // directly and on n1 (so n2 also receives them by gossip).
    let voters: Vec<Keypair> = (0..60u8)
        .map(|i| Keypair::from_seed([i + 100; 32]))
        .collect();
    let mut members: Vec<&Keypair> = vec![&d1.agent, &d2.agent];
    members.extend(voters.iter());
    let (pol, pol_bytes) = policy(&members);
    genesis_everywhere(&[&n1, &n2], pol, &pol_bytes, 0);
    let (p, p_bytes) = proposal(&d1.agent, pol, 3_600_000);
    n1.submit(&p_bytes);
    // A response waits for its proposal; a local one is refused until then.
    wait_until(15, "the proposal on n2", || n2.has(&p).engine.then_some(()));

    let mut acked_on_n2 = Vec::new();
    let mut all = vec![pol, p];
    for (i, o) in voters.iter().enumerate().take(40) {
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
    for o in &voters[40..] {
        let (id, bytes) = response(o, p, Stance::Abstain);
        n1.submit(&bytes);
        all.push(id);
    }

    // Restart alone: everything acknowledged is on disk and replays under
    // the anchor read back from config.toml.
    let n2 = d2.process(&[]);
    let anchors: AnchorList = n2.get_as("/anchors");
    assert_eq!(
        anchors.anchors.first().map(|a| a.genesis),
        Some(pol),
        "{anchors:?}"
    );
    for id in &acked_on_n2 {
        assert!(in_both(&n2.has(id)), "acknowledged {id} lost");
    }
    // Reconnect: it catches up on the rest.
    n2.dial(&n1.tcp);
    wait_until(20, "n2 catches up", || {
        all.iter().all(|id| n2.has(id).engine).then_some(())
    });
    assert_eq!(n1.ids(), n2.ids());
}

/// Both sides of a partition finalize the same proposal on different
/// response sets and sign receipts. The side holding two of the three
/// organizations (finality quorum 2) certifies its result; after the heal
/// every node holds that certificate, the other side's receipt stays a
/// minority attestation, and no node signs a second receipt.
#[test]
fn heal_after_finalization_keeps_the_certificate() {
    let keys: Vec<Keypair> = (0..3).map(|_| fresh_key()).collect();
    let n1 = node(&keys[0], &[]);
    let n2 = node(&keys[1], &[&n1.tcp]);
    let n3 = node(&keys[2], &[]);
    wait_until(20, "group A connected", || (n1.peers() == 1).then_some(()));

    let agents: Vec<&Keypair> = keys.iter().collect();
    let pol = orgs_policy(DOMAIN, &agents, &[], Some(2));
    let (p, p_bytes) = proposal(&keys[0], pol.id, 1_500);
    for n in [&n1, &n2, &n3] {
        n.anchor(pol.id);
    }
    for n in [&n1, &n3] {
        n.submit(&pol.bytes);
        n.submit(&p_bytes);
    }
    wait_until(15, "the proposal on n2", || n2.has(&p).engine.then_some(()));
    n2.submit(&response(&keys[1], p, Stance::Endorse).1);
    n3.submit(&response(&keys[2], p, Stance::Challenge).1);
    // Group A certifies on its own (2 of 3); n3 finalizes the other way.
    let a = wait_until(20, "group A certifies", || {
        let r = n1.resolution(&p);
        (r.finality.state == State::Certified).then_some(r)
    });
    assert_eq!(a.status, Status::Approved, "{a:?}");
    let b = wait_until(20, "n3 finalizes alone", || {
        let r = n3.resolution(&p);
        (r.receipts.len() == 1).then_some(r)
    });
    assert_eq!(b.computed_status, Status::Rejected, "{b:?}");
    assert_eq!(b.finality.state, State::Provisional, "{b:?}");

    n3.dial(&n1.tcp);
    let healed = wait_until(30, "the certificate everywhere", || {
        let rs: Vec<ResolutionAnswer> = [&n1, &n2, &n3].iter().map(|n| n.resolution(&p)).collect();
        let agree = rs.iter().all(|r| {
            r.finality.state == State::Certified
                && r.finality.certificate == a.finality.certificate
                && r.receipts.len() == 3
                && r.counted == 2
        });
        agree.then_some(rs)
    });
    for r in &healed {
        assert_eq!(r.status, Status::Approved, "{r:?}");
        // Both votes count now: a tie, so the node's own computation no
        // longer gives the certified digest; the certificate stands.
        assert_eq!(r.computed_status, Status::Escalated, "{r:?}");
        assert!(!r.finality.matches_certificate, "{r:?}");
        // n3's receipt for the other result, never re-signed.
        let signers: Vec<&PublicKey> = r.receipts.iter().map(|x| &x.node).collect();
        let distinct: BTreeSet<&&PublicKey> = signers.iter().collect();
        assert_eq!(distinct.len(), 3, "one receipt per node: {r:?}");
        assert_eq!(r.finality.attestations.len(), 2);
    }
    same_set(&[&n1, &n2, &n3], 15);
}

/// A response by `by`, signed at `issued_at`.
fn response_at(
    by: &Keypair,
    p: ContentId,
    stance: Stance,
    issued_at: Timestamp,
) -> (ContentId, Vec<u8>) {
    let m = response_signed(DOMAIN, by, by, p, stance, "after the fact", issued_at);
    (m.id, m.bytes)
}

/// Four nodes, three organizations (each of three nodes attests for one;
/// the fourth node's agent is a plain member and proposes). A proposal is
/// certified by all three attestors; then a member who never voted sends a
/// response backdated to before the close, and a member whose vote was
/// counted sends a second, contradicting one. Both are stored on every node
/// as evidence, listed under `after_certification`, and nothing about the
/// certified result changes anywhere: status, certificate, receipts.
#[test]
fn certified_result_survives_backdated_and_equivocating_responses() {
    let keys: Vec<Keypair> = (0..4).map(|_| fresh_key()).collect();
    let n1 = node(&keys[0], &[]);
    let n2 = node(&keys[1], &[&n1.tcp]);
    let n3 = node(&keys[2], &[&n1.tcp]);
    let n4 = node(&keys[3], &[&n2.tcp]);
    let nodes = [&n1, &n2, &n3, &n4];
    wait_until(20, "mesh", || {
        (n1.peers() >= 2 && n4.peers() >= 1).then_some(())
    });

    let voter = Keypair::from_seed([81; 32]);
    let backdater = Keypair::from_seed([82; 32]);
    let attestors = [&keys[0], &keys[1], &keys[2]];
    let pol = orgs_policy(DOMAIN, &attestors, &[&keys[3], &voter, &backdater], None);
    genesis_everywhere(&nodes, pol.id, &pol.bytes, 0);

    let (p, p_bytes) = proposal(&keys[3], pol.id, 3_000);
    let closes_at = closes_at(&p_bytes);
    n4.submit(&p_bytes);
    for n in &nodes {
        wait_until(15, "proposal everywhere", || n.has(&p).engine.then_some(()));
    }
    for (i, n) in [&n1, &n2, &n3].iter().enumerate() {
        n.submit(&response(&keys[i], p, Stance::Endorse).1);
    }
    let (counted_vote, vote_bytes) = response(&voter, p, Stance::Endorse);
    n2.submit(&vote_bytes);

    // Receipts: the three attestors' (n4, a member but no attestor, signs none).
    let before = identical_receipts(&nodes, &p, 3, 40);
    assert_eq!(before.status, Status::Approved, "{before:?}");
    assert_eq!(before.counted, 4, "{before:?}");
    assert_eq!(
        before.finality.summary,
        "certified by 3 of 3 organizations: approved"
    );
    let cert = before.finality.certificate.clone();
    let counted: Vec<ContentId> = n1
        .proposal(p)
        .package
        .counted
        .iter()
        .map(|c| c.vote.response)
        .collect();
    assert!(counted.contains(&counted_vote));

    // After certification: a backdated response, and the counted voter
    // contradicting itself (both signed before the close).
    let (late, late_bytes) = response_at(&backdater, p, Stance::Challenge, closes_at.plus_ms(0));
    let (second, second_bytes) =
        response_at(&voter, p, Stance::Challenge, Timestamp(closes_at.0 - 1));
    n4.submit(&late_bytes);
    n3.submit(&second_bytes);
    let evidence = [late, second];
    for n in &nodes {
        let v = wait_until(20, "both listed after certification on every node", || {
            let v = n.proposal(p);
            let after = &v.finality.after_certification;
            evidence.iter().all(|e| after.contains(e)).then_some(v)
        });
        assert_eq!(v.status, Status::Approved, "{v:?}");
        assert_eq!(v.finality.state, State::Certified, "{v:?}");
        assert_eq!(v.finality.certificate, cert, "{v:?}");
        // The node's own computation moved (an equivocator is excluded, a
        // new challenge counted); the certificate did not.
        assert!(!v.finality.matches_certificate, "{v:?}");
        assert_eq!(v.receipts.len(), 3, "no new receipt: {v:?}");
        assert!(
            v.package
                .excluded
                .iter()
                .any(|x| x.id == second && x.reason == Exclusion::Equivocation),
            "{v:?}"
        );
        let r = n.resolution(&p);
        assert_eq!(r.status, Status::Approved, "{r:?}");
        assert_eq!(r.finality.certificate, cert, "{r:?}");
    }
    // The audit bundle tells the same story offline.
    let bytes = reqwest::blocking::Client::new()
        .get(format!("{}/v1/proposals/{p}/audit", n4.http))
        .bearer_auth(&n4.token)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let report = acp_protocol::bundle::verify_bundle(&bytes).unwrap();
    assert!(report.resolution.finality.is_certified());
    assert_eq!(
        report.resolution.final_status(),
        acp_protocol::Status::Approved
    );
    assert!(!report.recomputed_matches_certificate);
    assert_eq!(
        report
            .resolution
            .finality
            .certificate
            .unwrap()
            .result
            .resolution
            .to_string(),
        cert.expect("certified").resolution.to_string()
    );
}
