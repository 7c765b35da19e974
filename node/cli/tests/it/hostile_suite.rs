//! Hostile peers against two honest `acp node` processes running a real
//! proposal. It floods (bounded) invalid and valid-but-junk messages,
//! replays genuine messages, sends forged, oversized and non-canonical
//! messages, equivocates with a member key, sends responses past the
//! deadline and after certification, and sends what the domain's lineage
//! does not authorize: a non-member's response, proposal and receipt, a
//! rogue genesis policy and an amendment the organizations did not sign.
//! The honest nodes keep resolving identically, store and forward no
//! invalid or unauthorized message, record the equivocation, exclude the
//! late response, keep the certified result, penalize the peer that keeps
//! sending refused messages and keep their memory bounded. One line sums up
//! what was tried: `HOSTILE tried=.. rejected=.. stored_bad=0 forwarded_bad=0 ..`.

use std::collections::BTreeSet;
use std::time::Duration;

use acp_node::surface::api::types::AttestationView;
use acp_protocol::build::{self, PolicyBuilder};
use acp_protocol::resolve::Exclusion;
use acp_protocol::{
    Body, ContentId, Keypair, Outcome, Receipt, SignedMessage, Stance, Status, Timestamp,
};

use crate::harness::*;

fn response_at(
    by: &Keypair,
    signer: &Keypair,
    proposal: ContentId,
    stance: Stance,
    reasoning: String,
    issued_at: Timestamp,
) -> SignedMessage {
    response_signed(DOMAIN, by, signer, proposal, stance, &reasoning, issued_at)
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn id_set(n: &TestNode) -> BTreeSet<ContentId> {
    n.ids().into_iter().collect()
}

/// `GET /v1/proposals/{id}` (the HTTP client blocks: off the async workers).
fn package(n: &TestNode, p: ContentId) -> ProposalDetail {
    tokio::task::block_in_place(|| n.proposal(p))
}

/// [`wait_until`] from async code: blocks this worker, not the runtime.
fn eventually<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    tokio::task::block_in_place(|| wait_until(secs, what, f))
}

/// The ids of the receipts a node holds for `p`.
fn receipt_ids(r: &ResolutionAnswer) -> BTreeSet<ContentId> {
    r.receipts.iter().map(|x| x.id).collect()
}

/// Waits until both nodes show `p` certified with the same certificate and
/// hold the same two receipts (one per node); returns the certificate.
fn converged(n1: &TestNode, n2: &TestNode, p: &ContentId, what: &str) -> Option<AttestationView> {
    eventually(25, &format!("{what}: both nodes certify"), || {
        let (r1, r2) = (n1.resolution(p), n2.resolution(p));
        let ok = r1.finality.state == State::Certified
            && r1.finality.certificate == r2.finality.certificate
            && receipt_ids(&r1).len() == 2
            && receipt_ids(&r1) == receipt_ids(&r2);
        ok.then(|| r1.finality.certificate.clone())
    })
}

/// `acp_gossip_penalized_total` of a node's `/metrics`.
fn penalized(n: &TestNode) -> u64 {
    sample(&n.metrics(), "acp_gossip_penalized_total").unwrap() as u64
}

#[derive(Default)]
struct Tally {
    tried: u64,
    rejected: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_suite() {
    let started = std::time::Instant::now();
    let d1 = DataDir::new();
    let d2 = DataDir::new();
    // Real processes: the memory bound below is n1's own, a process's RSS.
    let n1 = d1.process(&[]);
    let n2 = d2.process(&[&n1.tcp]);
    eventually(20, "honest nodes connected", || {
        (n1.peers() == 1).then_some(())
    });

    let proposer = Keypair::from_seed([50; 32]);
    let equivocator = Keypair::from_seed([51; 32]);
    let late = Keypair::from_seed([52; 32]);
    let backdater = Keypair::from_seed([53; 32]);
    let prober = Keypair::from_seed([54; 32]);
    let reporter = Keypair::from_seed([55; 32]);
    // Two organizations, attested by n1's and n2's agents, so both nodes
    // sign receipts and the certificate needs both. The nodes' agents carry
    // most of the authority: their two votes approve.
    let (org, org2) = (org_root(0), org_root(1));
    let mut b = PolicyBuilder::new(DOMAIN)
        .organization_attested(&org, "acme", 10_000, &d1.agent.public())
        .organization_attested(&org2, "globex", 10_000, &d2.agent.public());
    for (k, organization, authority) in [
        (&d1.agent, 0, 5000),
        (&d2.agent, 1, 5000),
        (&proposer, 0, 5000),
        (&equivocator, 0, 1000),
        (&late, 0, 1000),
        (&backdater, 0, 1000),
        (&prober, 0, 1000),
    ] {
        b = b.member(&k.public(), organization, authority);
    }
    let pol_msg = b
        .reporter(&reporter.public())
        .rules(test_rules())
        .issued(1, now())
        .sign(&[&org, &org2])
        .unwrap();
    let (pol, pol_bytes) = (pol_msg.id, pol_msg.bytes.clone());
    // The HTTP client blocks: off the async workers.
    tokio::task::block_in_place(|| {
        n1.anchor(pol);
        n2.anchor(pol);
    });
    n1.submit(&pol_bytes);
    eventually(20, "policy reaches n2", || n2.has(&pol).store.then_some(()));
    // An open proposal for the graylisting probe to vote on: a vote n1
    // would store if it read it.
    let (probe_target, probe_target_bytes) = proposal(&proposer, pol, 3_600_000);
    n1.submit(&probe_target_bytes);
    eventually(20, "probe target reaches n2", || {
        n2.has(&probe_target).store.then_some(())
    });

    let mut bad = Hostile::connect(&n1).await;
    let mut junk = Hostile::connect(&n1).await;
    let mut member = Hostile::connect(&n1).await;
    let mut outsider = Hostile::connect(&n1).await;
    let hostile_ids: BTreeSet<String> = [&bad, &junk, &member, &outsider]
        .iter()
        .map(|h| h.peer_id.clone())
        .collect();
    // Each saw n1 subscribe; n1 lists all four before anything is measured.
    eventually(20, "n1 connected to the four hostile peers", || {
        let peers: BTreeSet<String> = n1.peer_ids().into_iter().collect();
        hostile_ids.is_subset(&peers).then_some(())
    });
    let n2_hostile_peers = || -> Vec<String> {
        n2.status()
            .peers
            .into_iter()
            .filter(|p| hostile_ids.contains(p))
            .collect()
    };
    eventually(10, "n2 connected to no hostile peer", || {
        n2_hostile_peers().is_empty().then_some(())
    });
    let pid1 = n1.child().id();
    let rss_before = rss_kb(pid1);
    let ids_before = id_set(&n1);
    let g2_before = n2.gossip_received();
    let g1_before = n1.gossip_received();
    let mallory = Keypair::from_seed([66; 32]);
    let victim = Keypair::from_seed([67; 32]);
    let nowhere = ContentId::of(b"no such proposal");
    let mut bad_ids: Vec<(&str, ContentId)> = Vec::new();

    // 3. Forged signatures, oversized and non-canonical messages.
    let mut forged = Tally::default();
    let mut shapes = Tally::default();
    for i in 0..50u32 {
        let m = response_at(
            &victim,
            &victim,
            nowhere,
            Stance::Endorse,
            format!("f{i}"),
            now(),
        );
        let mut b = m.bytes.clone();
        let n = b.len();
        b[n - 1 - (i as usize % 32)] ^= 0x55;
        bad_ids.push(("bad signature", m.id));
        bad.send(b);
        let m = response_at(
            &victim,
            &mallory,
            nowhere,
            Stance::Endorse,
            format!("w{i}"),
            now(),
        );
        bad_ids.push(("wrong signer", m.id));
        bad.send(m.bytes);
        forged.tried += 2;
    }
    for i in 0..20u32 {
        let m = response_at(
            &mallory,
            &mallory,
            nowhere,
            Stance::Endorse,
            format!("t{i}"),
            now(),
        );
        let mut b = m.bytes.clone();
        b.push(i as u8);
        bad.send(b);
        bad_ids.push(("non-canonical", m.id));
        let m = response_at(
            &mallory,
            &mallory,
            nowhere,
            Stance::Endorse,
            format!("{i}{}", "x".repeat(60_000)),
            now(),
        );
        bad_ids.push(("oversized field", m.id));
        bad.send(m.bytes);
        // Big (900 kB) but not a message at all.
        let mut big = vec![0xa5u8; 900_000];
        big[0] = i as u8;
        bad.send(big);
        shapes.tried += 3;
    }
    // 1a. Bounded flood of invalid messages: 1,000 distinct byte strings.
    let mut flood_invalid = Tally::default();
    for i in 0..1000u32 {
        let mut b = format!("junk {i} ").into_bytes();
        b.extend_from_slice(&[0xff; 64]);
        bad.send(b);
        flood_invalid.tried += 1;
    }
    // Scoring: right after its flood, the same peer sends one valid member
    // vote on an open proposal. A graylisted peer's messages are dropped
    // unread, so n1 must not hold it (the node does not expose peer scores;
    // this is how the test sees them).
    let probe = response_at(
        &prober,
        &prober,
        probe_target,
        Stance::Abstain,
        "probe".into(),
        now(),
    );
    bad.send(probe.bytes.clone());
    // Barrier: the bad peer closes its connection and n1 drops it, so n1 has
    // read everything the peer wrote, the probe last; then n1's core has
    // judged whatever gossipsub handed it of the flood.
    bad.close(&n1);
    let bad_failed = bad.failed();
    eventually(20, "n1's core judges what gossipsub handed it", || {
        core_caught_up(&n1).then_some(())
    });
    let g1_bad = n1.gossip_received() - g1_before;
    let g2_after_invalid = n2.gossip_received();
    assert_eq!(
        id_set(&n1),
        ids_before,
        "an invalid message was stored by n1"
    );
    // n1 forwarded nothing of it: n2 received no gossip at all meanwhile.
    let forwarded_invalid = g2_after_invalid - g2_before;
    assert!(
        n2_hostile_peers().is_empty(),
        "a hostile peer reached n2 directly; the forwarding count would be meaningless"
    );
    assert_eq!(forwarded_invalid, 0, "n1 forwarded invalid gossip to n2");
    let graylisted = in_neither(&n1.has(&probe.id));
    assert!(
        graylisted,
        "n1 accepted a valid message from the peer that just sent {} invalid ones",
        forged.tried + shapes.tried + flood_invalid.tried
    );
    // Gossipsub handed almost none of the invalid messages to the node.
    assert!(
        g1_bad * 10 < flood_invalid.tried,
        "{g1_bad} invalid messages reached n1's core"
    );
    forged.rejected = forged.tried;
    shapes.rejected = shapes.tried;
    flood_invalid.rejected = flood_invalid.tried;

    // 1b. Bounded flood of valid-but-junk messages: 1,000 responses signed by
    // 1,000 non-member keys to proposals that do not exist. They wait for
    // their proposals in n1's bounded buffer (never stored) and expire.
    let mut flood_junk = Tally::default();
    let mut junk_ids: BTreeSet<ContentId> = BTreeSet::new();
    for i in 0..1000u32 {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        seed[31] = 0xee;
        let k = Keypair::from_seed(seed);
        let p = ContentId::of(&i.to_be_bytes());
        let m = response_at(&k, &k, p, Stance::Abstain, String::new(), now());
        junk_ids.insert(m.id);
        junk.send(m.bytes);
        flood_junk.tried += 1;
    }
    junk.flush();

    // n1's event stream, open before the equivocation it must report.
    let ev_rx = tokio::task::block_in_place(|| n1.events());

    // The honest proposal, with the honest responses.
    let (pid, p_bytes) = proposal(&proposer, pol, 7_000);
    n1.submit(&p_bytes);
    let closes_at = closes_at(&p_bytes);
    let (r1, r1_bytes) = response(&d1.agent, pid, Stance::Endorse);
    let (r2, r2_bytes) = response(&d2.agent, pid, Stance::Endorse);
    n1.submit(&r1_bytes);
    // A local response is refused until its proposal is there.
    eventually(20, "the proposal on n2", || {
        n2.has(&pid).engine.then_some(())
    });
    n2.submit(&r2_bytes);

    // 4. Equivocation: two different responses by one member key.
    let e1 = response_at(
        &equivocator,
        &equivocator,
        pid,
        Stance::Endorse,
        "yes".into(),
        now(),
    );
    let e2 = response_at(
        &equivocator,
        &equivocator,
        pid,
        Stance::Challenge,
        "no".into(),
        now(),
    );
    member.send(e1.bytes.clone());
    member.send(e2.bytes.clone());
    // 5a. A response signed after the deadline (issued_at > closes_at),
    // sent before it: stored, but excluded as late.
    let lr = response_at(
        &late,
        &late,
        pid,
        Stance::Challenge,
        "late".into(),
        closes_at.plus_ms(1),
    );
    member.send(lr.bytes.clone());
    member.flush();

    // 2. Replays of genuine messages (by a peer that never saw them).
    let mut replay = Tally::default();
    eventually(20, "honest responses reach both nodes", || {
        (n1.has(&r2).store && n2.has(&r1).store && n2.has(&e2.id).store).then_some(())
    });
    let stored_before_replay = id_set(&n1);
    // Gossipsub refuses to publish the same bytes twice from one peer (its
    // message id is the hash of the bytes), so each peer replays each
    // genuine message once: the junk peer all six, the member peer the four
    // it did not send itself.
    for b in [
        &pol_bytes, &p_bytes, &r1_bytes, &r2_bytes, &e1.bytes, &lr.bytes,
    ] {
        junk.send(b.clone());
        replay.tried += 1;
    }
    for b in [&pol_bytes, &p_bytes, &r1_bytes, &r2_bytes] {
        member.send(b.clone());
        replay.tried += 1;
    }
    junk.flush();
    member.flush();

    // Certification: both nodes agree, the equivocator is excluded and the
    // late response is excluded as late.
    let cert_1 = converged(&n1, &n2, &pid, "first certification");
    // Replays add nothing: whatever is new since is a receipt or junk, and
    // the stores hold each message once.
    let receipt_ids = receipt_ids(&n1.resolution(&pid));
    let new_ids: Vec<ContentId> = id_set(&n1)
        .difference(&stored_before_replay)
        .filter(|id| !receipt_ids.contains(*id) && !junk_ids.contains(*id))
        .cloned()
        .collect();
    assert!(new_ids.is_empty(), "replays added {new_ids:?}");
    for n in [&n1, &n2] {
        let st = n.status();
        assert_eq!(st.messages, st.stored, "{st:?}");
    }
    replay.rejected = replay.tried;
    let mut equivocation = Tally {
        tried: 2,
        ..Tally::default()
    };
    let mut lateness = Tally {
        tried: 1,
        ..Tally::default()
    };
    for n in [&n1, &n2] {
        let v = package(n, pid);
        let excluded = &v.package.excluded;
        let reason_of = |id: &ContentId| excluded.iter().find(|x| x.id == *id).map(|x| x.reason);
        let counted: Vec<ContentId> = v.package.counted.iter().map(|c| c.vote.response).collect();
        assert_eq!(reason_of(&e1.id), Some(Exclusion::Equivocation), "{v:?}");
        assert_eq!(reason_of(&e2.id), Some(Exclusion::Equivocation), "{v:?}");
        assert_eq!(reason_of(&lr.id), Some(Exclusion::Late), "{v:?}");
        assert_eq!(
            v.package.resolution.equivocators,
            vec![equivocator.public()],
            "{v:?}"
        );
        assert_eq!(v.status, Status::Approved, "{v:?}");
        let mut want = vec![r1, r2];
        want.sort();
        let mut got = counted.clone();
        got.sort();
        assert_eq!(got, want, "only the honest votes count");
    }
    eventually(20, "the equivocation event on n1's /v1/events", || {
        while let Ok(ev) = ev_rx.recv_timeout(Duration::from_millis(100)) {
            if let StreamEvent::Equivocation(e) = ev
                && e.agent == equivocator.public()
            {
                assert_eq!(e.proposal, pid);
                return Some(());
            }
        }
        None
    });
    equivocation.rejected = 2;
    lateness.rejected = 1;

    // 5b. A response signed before the deadline but sent after
    // certification: stored as evidence, listed, never counted.
    let br = response_at(
        &backdater,
        &backdater,
        pid,
        Stance::Challenge,
        "backdated".into(),
        closes_at.plus_ms(0),
    );
    member.send(br.bytes.clone());
    member.flush();
    for n in [&n1, &n2] {
        eventually(
            20,
            "the backdated response listed after certification",
            || {
                let r = n.resolution(&pid);
                r.finality
                    .after_certification
                    .contains(&br.id)
                    .then_some(())
            },
        );
    }
    let cert_2 = converged(&n1, &n2, &pid, "after the backdated response");
    let backdate_counted = cert_2 != cert_1;
    assert!(
        !backdate_counted,
        "the certificate changed: {cert_1:?} -> {cert_2:?}"
    );

    // 6. What the lineage does not authorize, by a peer that sends nothing
    // else: a non-member's response, proposal and receipt, a rogue genesis
    // policy for the domain, and an amendment of the real policy its
    // organization did not sign. Then a barrier, a legitimate outcome
    // report by the policy's reporter from the same peer: once it is on n2,
    // anything n1 forwarded before it would be there too.
    let p_msg = acp_protocol::decode_message(&p_bytes).unwrap();
    let rogue = Keypair::from_seed([68; 32]);
    let rogue_policy = |b: PolicyBuilder| {
        b.organization_attested(&rogue, "rogue", 10_000, &mallory.public())
            .member(&mallory.public(), 0, 10_000)
            .rules(test_rules())
            .sign(&[&rogue])
            .unwrap()
    };
    let unauthorized: Vec<(&str, SignedMessage)> = vec![
        (
            "non-member response",
            response_at(
                &mallory,
                &mallory,
                pid,
                Stance::Challenge,
                "not a member".into(),
                now(),
            ),
        ),
        (
            "non-member proposal",
            build::proposal(
                &mallory,
                DOMAIN,
                pol,
                "loan.approve",
                "{}",
                now(),
                now().plus_ms(60_000),
            )
            .unwrap(),
        ),
        (
            "non-member receipt",
            Body::Receipt(Receipt {
                node: mallory.public(),
                domain: DOMAIN.into(),
                proposal: pid,
                closes_at,
                status: Status::Rejected,
                resolution: ContentId::of(b"forged resolution"),
                counted_root: ContentId::of(b"forged root"),
                human_decision: None,
            })
            .sign(&[&mallory])
            .unwrap(),
        ),
        (
            "rogue genesis",
            rogue_policy(PolicyBuilder::new(DOMAIN).issued(1, now())),
        ),
        (
            "unsigned amendment",
            rogue_policy(PolicyBuilder::new(DOMAIN).supersedes(pol).issued(2, now())),
        ),
    ];
    for (_, m) in &unauthorized {
        outsider.send(m.bytes.clone());
    }
    let barrier = build::outcome_report(&reporter, &p_msg, Outcome::Succeeded, now()).unwrap();
    outsider.send(barrier.bytes.clone());
    outsider.flush();
    eventually(20, "the barrier on both nodes", || {
        (n1.has(&barrier.id).store && n2.has(&barrier.id).store).then_some(())
    });
    let mut lineage = Tally::default();
    for (what, m) in &unauthorized {
        lineage.tried += 1;
        assert!(in_neither(&n1.has(&m.id)), "{what} held by n1");
        assert!(in_neither(&n2.has(&m.id)), "{what} forwarded to n2");
        lineage.rejected += 1;
    }

    // 7. The same peer keeps sending non-members' votes: past the strikes
    // tolerated, n1 reports them to gossipsub as invalid (the peer's score
    // drops as an invalid sender's would).
    for i in 0..(acp_node::service::STRIKES_TOLERATED + 8) {
        outsider.send(
            response_at(
                &mallory,
                &mallory,
                pid,
                Stance::Challenge,
                format!("strike {i}"),
                now(),
            )
            .bytes,
        );
    }
    outsider.flush();
    let penalties = eventually(20, "n1 penalizes the peer", || {
        let n = penalized(&n1);
        (n >= 1).then_some(n)
    });

    // Memory and stores after everything.
    let rss_after = rss_kb(pid1);
    let (s1, s2) = (id_set(&n1), id_set(&n2));
    assert_eq!(s1, s2, "the honest nodes hold different sets");
    let mut stored_bad = 0;
    let mut forwarded_bad = 0;
    for (what, id) in &bad_ids {
        if !in_neither(&n1.has(id)) {
            stored_bad += 1;
            eprintln!("{what} {id} held by n1");
        }
        if !in_neither(&n2.has(id)) {
            forwarded_bad += 1;
            eprintln!("{what} {id} held by n2");
        }
    }
    forwarded_bad += forwarded_invalid;
    let junk_stored = s1.intersection(&junk_ids).count();
    assert_eq!(junk_stored, 0, "responses to unknown proposals were stored");
    let bound = 2 * rss_before + 64 * 1024;
    let tried = forged.tried
        + shapes.tried
        + flood_invalid.tried
        + flood_junk.tried
        + replay.tried
        + equivocation.tried
        + lateness.tried
        + lineage.tried;
    let rejected = forged.rejected
        + shapes.rejected
        + flood_invalid.rejected
        + replay.rejected
        + equivocation.rejected
        + lateness.rejected
        + lineage.rejected;
    let failed_locally = (
        bad_failed,
        junk.failed(),
        member.failed(),
        outsider.failed(),
    );
    println!(
        "HOSTILE tried={tried} rejected={rejected} stored_bad={stored_bad} \
         forwarded_bad={forwarded_bad} forged={}/{} malformed={}/{} flood_invalid={}/{} \
         flood_junk_valid={} junk_stored={junk_stored} replays={}/{} equivocation_excluded={}/{} \
         late_excluded={}/{} backdated_after_certification_counted={backdate_counted} \
         unauthorized_refused={}/{} penalized={penalties} \
         bad_peer_graylisted={graylisted} n1_core_saw_from_bad_peer={g1_bad} \
         publish_failed_bad_junk_member={failed_locally:?} \
         rss_kb_before={rss_before} rss_kb_after={rss_after} elapsed_s={:.1}",
        forged.rejected,
        forged.tried,
        shapes.rejected,
        shapes.tried,
        flood_invalid.rejected,
        flood_invalid.tried,
        flood_junk.tried,
        replay.rejected,
        replay.tried,
        equivocation.rejected,
        equivocation.tried,
        lateness.rejected,
        lateness.tried,
        lineage.rejected,
        lineage.tried,
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(
        failed_locally,
        (0, 0, 0, 0),
        "some hostile messages never left"
    );
    assert_eq!(stored_bad, 0);
    assert_eq!(forwarded_bad, 0);
    assert!(
        rss_after <= bound,
        "RSS grew from {rss_before} kB to {rss_after} kB (bound {bound})"
    );
    for h in [bad, junk, member, outsider] {
        h.task.abort();
    }
}
