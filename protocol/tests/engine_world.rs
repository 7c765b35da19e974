//! Several engines on a virtual clock, receiving messages in different
//! orders, end with identical resolutions, one certificate, and evidence of
//! whatever arrived after it.

mod common;

use acp_protocol::admission::Refusal;
use acp_protocol::build::{human_decision, receipt, response};
use acp_protocol::bundle::{AuditBundle, verify_bundle};
use acp_protocol::engine::{Effect, Event, IngestError, Origin};
use acp_protocol::finality::State;
use acp_protocol::{Body, Engine, EngineConfig, Stance, Status, Verdict};
use common::*;

fn receipts(
    world: &World,
    proposal: &acp_protocol::ContentId,
) -> Vec<(acp_protocol::PublicKey, acp_protocol::ContentId, Status)> {
    let mut out = Vec::new();
    for e in &world.engines {
        let set = e.set();
        for rid in set
            .refs(proposal)
            .map(|r| r.receipts.clone())
            .unwrap_or_default()
        {
            if let Some(Body::Receipt(r)) = set.get(&rid).map(|m| m.body()) {
                out.push((r.node, r.resolution, r.status));
            }
        }
    }
    out
}

fn world_with(f: &Fixture, nodes: usize, seed: u64, latency: u64) -> World {
    let mut w = World::new(nodes, seed, latency);
    w.anchor(DOMAIN, f.policy.id);
    w.now = CREATED;
    w.submit(0, &f.policy);
    w.submit(0, &f.proposal);
    w.run_until(CREATED.plus_ms(latency + 10));
    w
}

fn engine_with_anchor(f: &Fixture) -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.add_anchor(DOMAIN, f.policy.id);
    e
}

#[test]
fn engines_agree_and_certify_whatever_the_delivery_order() {
    let f = Fixture::standard();
    let mut digests = Vec::new();
    for seed in [1u64, 7, 42, 1_000_003] {
        let mut w = world_with(&f, 4, seed, 500);
        for (i, (s, c)) in [
            (Stance::Endorse, 9_000),
            (Stance::Endorse, 7_000),
            (Stance::Challenge, 6_000),
            (Stance::Abstain, 5_000),
        ]
        .iter()
        .enumerate()
        {
            w.now = w.now.plus_ms(100);
            w.run_until(w.now);
            w.submit(i % 4, &f.vote_at(i, *s, *c, w.now));
        }
        w.run_until(CLOSES.plus_ms(10_000));
        let d = w.digests(&f.proposal.id);
        assert!(d.windows(2).all(|p| p[0] == p[1]), "seed {seed}: {d:?}");
        // The two attestors signed one receipt each; every node holds both.
        let rs = receipts(&w, &f.proposal.id);
        assert_eq!(rs.len(), 4 * 2, "each node holds both attestors' receipts");
        assert!(rs.iter().all(|r| r.1 == d[0] && r.2 == Status::Approved));
        digests.push(d[0]);
        for (i, ev) in w.events.iter().enumerate() {
            assert!(ev.iter().any(|e| matches!(e, Event::Decided { resolution } if resolution.status == Status::Approved)));
            assert!(
                ev.iter()
                    .any(|e| matches!(e, Event::Certified { resolution }
                    if resolution.final_status() == Status::Approved)),
                "node {i} saw the certificate"
            );
        }
        let now = w.now;
        let r = w.engines[3].resolve(&f.proposal.id, now).expect("r");
        assert_eq!(r.finality.state, State::Certified);
        let cert = r.finality.certificate.expect("certificate");
        assert_eq!(cert.organizations, vec![0, 1]);
        assert_eq!(cert.result.resolution, d[0]);
    }
    assert!(digests.windows(2).all(|p| p[0] == p[1]));
}

#[test]
fn a_backdated_response_after_certification_is_evidence_not_a_change() {
    let f = Fixture::new(&[10_000; 3], acp_protocol::build::default_rules());
    let mut w = world_with(&f, 2, 3, 0);
    w.submit(0, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(1, &f.vote(1, Stance::Endorse, 9_000));
    w.run_until(CLOSES.plus_ms(5_000));
    let now = w.now;
    let before = w.engines[1].resolve(&f.proposal.id, now).expect("r");
    assert_eq!(before.finality.state, State::Certified);
    let certified = before.finality.certificate.clone().expect("cert").result;
    // Agent 2 signs a challenge dated at the close and submits it now; its
    // own vote and an equivocation by agent 0 follow.
    let late = f.vote_at(2, Stance::Challenge, 10_000, CLOSES);
    let twin = f.vote_at(0, Stance::Challenge, 10_000, CLOSES);
    for m in [&late, &twin] {
        let ing = w.engines[1]
            .ingest(&m.bytes, Origin::Sync, now)
            .expect("admitted: the responders are members");
        assert!(ing.effects.iter().any(|e| matches!(e,
            Effect::Event(Event::AfterCertification { id, .. }) if *id == m.id)));
    }
    let effects = w.engines[1].tick(now);
    assert!(
        !effects.iter().any(|e| matches!(
            e,
            Effect::Event(Event::Divergence { .. }) | Effect::Store { .. }
        )),
        "no divergence and no new receipt after certification: {effects:?}"
    );
    let after = w.engines[1].resolve(&f.proposal.id, now).expect("r");
    assert_ne!(after.digest(), before.digest(), "the computation moved");
    assert_eq!(after.final_status(), Status::Approved, "the result did not");
    assert_eq!(after.finality.certificate.expect("cert").result, certified);
    let pkg = w.engines[1]
        .decision_package(&f.proposal.id, now)
        .expect("package");
    assert_eq!(pkg.after_certification, vec![late.id, twin.id]);
}

#[test]
fn equivocation_escalates_and_the_human_decision_is_certified() {
    let f = Fixture::new(&[10_000; 2], acp_protocol::build::default_rules());
    let mut w = world_with(&f, 3, 9, 200);
    w.submit(1, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(2, &f.vote(0, Stance::Challenge, 9_000));
    w.submit(1, &f.vote(1, Stance::Abstain, 8_000));
    w.run_until(CLOSES.plus_ms(5_000));
    let now = w.now;
    for (i, ev) in w.events.iter().enumerate() {
        assert!(
            ev.iter().any(|e| matches!(e, Event::Equivocation { .. })),
            "node {i}"
        );
        assert!(
            ev.iter().any(|e| matches!(e, Event::Escalated { .. })),
            "node {i}"
        );
    }
    let r = w.engines[0].resolve(&f.proposal.id, now).expect("r");
    assert_eq!(
        r.finality.state,
        State::Escalated,
        "round 0 certified the escalation"
    );
    assert!(r.finality.human_round_open);

    let decision =
        human_decision(&f.human, &f.proposal, Verdict::Approve, "checked", now).expect("sign");
    w.submit(2, &decision);
    w.run_until(w.now.plus_ms(5_000));
    let d = w.digests(&f.proposal.id);
    assert!(d.windows(2).all(|p| p[0] == p[1]));
    let now = w.now;
    let r = w.engines[0].resolve(&f.proposal.id, now).expect("r");
    assert_eq!(r.status, Status::Approved);
    assert_eq!(r.human_decision, Some(decision.id));
    assert_eq!(r.finality.state, State::Certified);
    let cert = r.finality.certificate.clone().expect("cert");
    assert_eq!(cert.result.human_decision, Some(decision.id));

    // The audit bundle verifies offline and recomputes the certified digest.
    let bundle = AuditBundle::collect(w.engines[0].set(), &f.proposal.id).expect("bundle");
    let bytes = bundle.to_bytes().expect("encode");
    let report = verify_bundle(&bytes).expect("verifies");
    assert_eq!(report.resolution.digest(), d[0]);
    assert!(report.recomputed_matches_certificate);
    assert_eq!(report.resolution.final_status(), Status::Approved);
    // Without the human decision the certificate still stands (the receipts
    // are signed), but the bundle no longer recomputes it.
    let mut dropped = bundle.clone();
    dropped.messages.retain(|m| *m != decision.bytes);
    let report = verify_bundle(&dropped.to_bytes().expect("encode")).expect("structure ok");
    assert!(!report.recomputed_matches_certificate);
    // Flip a byte inside a message.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(verify_bundle(&flipped).is_err());
}

#[test]
fn an_attestor_signing_two_results_is_evidence_and_certifies_nothing_alone() {
    let f = Fixture::standard();
    let mut e = engine_with_anchor(&f);
    let t = CLOSES.plus_ms(10);
    for m in [
        &f.policy,
        &f.proposal,
        &f.vote(0, Stance::Endorse, 9_000),
        &f.vote(1, Stance::Endorse, 9_000),
    ] {
        e.ingest(&m.bytes, Origin::Peer, t).expect("admitted");
    }
    let r = e.resolve(&f.proposal.id, t).expect("r");
    assert_eq!(r.status, Status::Approved);
    let honest = receipt(&attestor(0), &f.proposal, &r).expect("sign");
    let mut other = r.clone();
    other.status = Status::Rejected;
    let forged = receipt(&attestor(0), &f.proposal, &other).expect("sign");
    for m in [&honest, &forged] {
        e.ingest(&m.bytes, Origin::Peer, t)
            .expect("an attestor's receipt");
    }
    let effects = e.tick(t);
    assert!(effects.iter().any(|x| matches!(x,
        Effect::Event(Event::AttestorEquivocation { receipts, .. }) if receipts.len() == 2)));
    let r = e.resolve(&f.proposal.id, t).expect("r");
    assert_eq!(
        r.finality.state,
        State::Provisional,
        "one organization of two"
    );
    // The second organization's attestor completes the honest certificate;
    // the equivocator counts for it (what a key signed is never undone).
    let second = receipt(&attestor(1), &f.proposal, &r).expect("sign");
    e.ingest(&second.bytes, Origin::Peer, t).expect("admitted");
    let r = e.resolve(&f.proposal.id, t).expect("r");
    assert_eq!(r.finality.state, State::Certified);
    assert_eq!(r.final_status(), Status::Approved);
}

#[test]
fn admission_refuses_outsiders_and_parks_what_comes_early() {
    let f = Fixture::standard();
    let mut e = engine_with_anchor(&f);
    let t = CREATED.plus_ms(100);
    // A response before its proposal waits, and the engine asks for it.
    let early = f.vote(0, Stance::Endorse, 9_000);
    e.ingest(&f.policy.bytes, Origin::Peer, t).expect("genesis");
    assert_eq!(
        e.ingest(&early.bytes, Origin::Peer, t)
            .expect_err("refused"),
        IngestError::Pending {
            needs: f.proposal.id
        }
    );
    let effects = e.tick(t);
    assert!(
        effects
            .iter()
            .any(|x| matches!(x, Effect::Fetch { ids, .. } if ids == &vec![f.proposal.id]))
    );
    let ing = e
        .ingest(&f.proposal.bytes, Origin::Peer, t)
        .expect("proposal");
    assert!(
        ing.effects
            .iter()
            .any(|x| matches!(x, Effect::Store { id, .. } if *id == early.id)),
        "the parked response is admitted and stored with its dependency"
    );
    assert!(e.set().contains(&early.id));
    // An outsider's response, receipt and proposal are refused.
    let outsider = key(99);
    let resp = response(&outsider, &f.proposal, Stance::Challenge, 9_000, "x", t).expect("sign");
    assert_eq!(
        e.ingest(&resp.bytes, Origin::Peer, t).expect_err("refused"),
        IngestError::NotAdmitted(Refusal::NotAuthorized)
    );
    let r = e.resolve(&f.proposal.id, t).expect("r");
    let rc = receipt(&outsider, &f.proposal, &r).expect("sign");
    assert_eq!(
        e.ingest(&rc.bytes, Origin::Peer, t).expect_err("refused"),
        IngestError::NotAdmitted(Refusal::NotAuthorized)
    );
    let p = acp_protocol::build::proposal(
        &outsider,
        DOMAIN,
        f.policy.id,
        "loan.approve",
        "{}",
        t,
        t.plus_ms(60_000),
    )
    .expect("sign");
    assert_eq!(
        e.ingest(&p.bytes, Origin::Peer, t).expect_err("refused"),
        IngestError::NotAdmitted(Refusal::NotAuthorized)
    );
    // A policy signed by strangers for the domain governs nothing.
    let rogue = acp_protocol::build::PolicyBuilder::new(DOMAIN)
        .organization(&outsider, "rogue", 10_000)
        .member(&outsider.public(), 0, 10_000)
        .sign(&[&outsider])
        .expect("sign");
    assert_eq!(
        e.ingest(&rogue.bytes, Origin::Peer, t)
            .expect_err("refused"),
        IngestError::NotAdmitted(Refusal::NotInLineage)
    );
    let stats = e.admission_stats();
    assert_eq!(stats.refused.values().sum::<u64>(), 4);
    assert_eq!((stats.parked, stats.released, stats.waiting), (1, 1, 0));
    // A message whose dependency never comes is dropped after the wait.
    let orphan = response(
        &f.agents[1],
        &acp_protocol::build::proposal(
            &f.proposer,
            DOMAIN,
            f.policy.id,
            "other",
            "{}",
            t,
            t.plus_ms(60_000),
        )
        .expect("sign"),
        Stance::Endorse,
        5_000,
        "y",
        t,
    )
    .expect("sign");
    assert!(matches!(
        e.ingest(&orphan.bytes, Origin::Peer, t),
        Err(IngestError::Pending { .. })
    ));
    e.tick(t.plus_ms(EngineConfig::default().pending_ttl_ms));
    let stats = e.admission_stats();
    assert_eq!((stats.expired, stats.waiting), (1, 0));
    assert!(!e.set().contains(&orphan.id));
}

#[test]
fn restart_from_store_keeps_receipts_and_signs_nothing_new() {
    let f = Fixture::standard();
    let mut w = world_with(&f, 2, 5, 100);
    w.submit(1, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(1, &f.vote(1, Stance::Endorse, 9_000));
    w.run_until(CLOSES.plus_ms(5_000));
    let before = w.digests(&f.proposal.id)[0];
    // Rebuild node 0 from everything it stored, in arrival order as the
    // node's store keeps it (dependencies first).
    let mut stored: Vec<&acp_protocol::SignedMessage> =
        w.engines[0].set().iter().map(|m| m.as_ref()).collect();
    stored.sort_by_key(|m| (m.body().kind(), m.id));
    let mut restored = Engine::new(EngineConfig {
        receipt_key: Some(attestor(0)),
        ..EngineConfig::default()
    });
    restored.add_anchor(DOMAIN, f.policy.id);
    for m in &stored {
        restored
            .ingest(&m.bytes, Origin::Store, w.now)
            .expect("stored bytes are valid");
    }
    let effects = restored.tick(w.now);
    assert!(
        effects.iter().all(|e| !matches!(e, Effect::Store { .. })),
        "no new receipt after a restart: {effects:?}"
    );
    assert_eq!(
        restored.resolve(&f.proposal.id, w.now).expect("r").digest(),
        before
    );
    assert_eq!(restored.set().len(), stored.len());
}

#[test]
fn decision_package_carries_reasoning_and_exclusions() {
    let f = Fixture::standard();
    let mut e = engine_with_anchor(&f);
    let late = f.vote_at(3, Stance::Challenge, 9_000, CLOSES.plus_ms(1));
    for m in [
        &f.policy,
        &f.proposal,
        &f.vote(0, Stance::Endorse, 8_000),
        &late,
    ] {
        e.ingest(&m.bytes, Origin::Peer, CLOSES.plus_ms(10))
            .expect("valid");
    }
    let pkg = e.decision_package(&f.proposal.id, CLOSES).expect("package");
    assert_eq!(pkg.counted.len(), 1);
    assert_eq!(pkg.counted[0].response.reasoning, "agent 0 reasoning");
    assert_eq!(pkg.excluded.len(), 1);
    assert_eq!(
        pkg.excluded[0].reason,
        acp_protocol::resolve::Exclusion::Late
    );
    assert!(pkg.policy.is_some());
    let json = serde_json::to_string(&pkg).expect("json");
    assert!(json.contains("agent 0 reasoning"));
}

#[test]
fn early_decision_withdrawn_by_equivocation_before_certification_is_a_divergence() {
    // Three members; two full endorsements decide early. One of them then
    // signs a second, different response before anything is certified: its
    // vote is withdrawn and the proposal closes escalated.
    let f = Fixture::new(&[10_000; 3], acp_protocol::build::default_rules());
    let mut e = engine_with_anchor(&f);
    let t = CREATED.plus_ms(5);
    for m in [
        &f.policy,
        &f.proposal,
        &f.vote(0, Stance::Endorse, 10_000),
        &f.vote(1, Stance::Endorse, 10_000),
    ] {
        e.ingest(&m.bytes, Origin::Peer, t).expect("valid");
    }
    let early = e.tick(t);
    assert!(
        early
            .iter()
            .any(|x| matches!(x, Effect::Event(Event::Decided { resolution }) if resolution.early))
    );
    let twin = f.vote(1, Stance::Challenge, 10_000);
    e.ingest(&twin.bytes, Origin::Peer, t).expect("valid");
    let fin = e.tick(CLOSES.plus_ms(60_000));
    assert!(fin.iter().any(|x| matches!(x, Effect::Event(Event::Divergence { previous, .. }) if previous.1 == Status::Approved)));
    assert!(
        fin.iter()
            .any(|x| matches!(x, Effect::Event(Event::Escalated { .. })))
    );
}

#[test]
fn one_source_cannot_fill_the_pending_buffer() {
    use acp_protocol::engine::Unverified;
    let f = Fixture::standard();
    let mut e = Engine::new(EngineConfig {
        max_pending_per_source: 2,
        ..EngineConfig::default()
    });
    e.add_anchor(DOMAIN, f.policy.id);
    let t = CREATED.plus_ms(100);
    e.ingest(&f.policy.bytes, Origin::Peer, t).expect("genesis");
    // Three responses to a proposal the engine has not seen, all from peer 7:
    // two wait, the third is dropped; the same from peer 8 still waits.
    let votes: Vec<_> = (0..4).map(|i| f.vote(i, Stance::Endorse, 9_000)).collect();
    fn from(
        m: &acp_protocol::SignedMessage,
        peer: u64,
    ) -> Vec<Result<Unverified<'_>, IngestError>> {
        let u = Unverified::decode(&m.bytes, Origin::Peer)
            .expect("valid")
            .from_source(peer);
        vec![Ok(u)]
    }
    for v in &votes[..3] {
        let r = e.ingest_batch_decoded(from(v, 7), t);
        assert!(matches!(r[0], Err(IngestError::Pending { .. })));
    }
    let r = e.ingest_batch_decoded(from(&votes[3], 8), t);
    assert!(matches!(r[0], Err(IngestError::Pending { .. })));
    let stats = e.admission_stats();
    assert_eq!((stats.parked, stats.overflow, stats.waiting), (3, 1, 3));
    // The proposal arrives: the three that waited are admitted.
    e.ingest(&f.proposal.bytes, Origin::Peer, t)
        .expect("proposal");
    for (i, v) in votes.iter().enumerate() {
        assert_eq!(e.set().contains(&v.id), i != 2, "vote {i}");
    }
}

#[test]
fn an_overdue_node_syncs_before_it_signs() {
    // A node that wakes long after the close (a restart, a stall) asks for
    // a sync round and signs only half a grace period later, so its receipt
    // is not computed on a stale set.
    let f = Fixture::standard();
    let mut e = Engine::new(EngineConfig {
        receipt_key: Some(attestor(0)),
        ..EngineConfig::default()
    });
    e.add_anchor(DOMAIN, f.policy.id);
    let t = CREATED.plus_ms(10);
    for m in [&f.policy, &f.proposal, &f.vote(0, Stance::Endorse, 9_000)] {
        e.ingest(&m.bytes, Origin::Peer, t).expect("admitted");
    }
    let late = CLOSES.plus_ms(600_000);
    let first = e.tick(late);
    assert!(first.iter().any(|x| matches!(x, Effect::Sync { .. })));
    assert!(
        !first.iter().any(|x| matches!(x, Effect::Store { .. })),
        "no receipt in the tick that asks for the sync: {first:?}"
    );
    let half = EngineConfig::default().finalize_grace_ms / 2;
    assert_eq!(e.next_wakeup(), Some(late.plus_ms(half)));
    let second = e.tick(late.plus_ms(half));
    assert!(
        second.iter().any(|x| matches!(x, Effect::Store { .. })),
        "{second:?}"
    );
}

#[test]
fn a_certified_escalation_makes_later_votes_evidence() {
    let f = Fixture::new(&[10_000; 2], acp_protocol::build::default_rules());
    let mut w = world_with(&f, 2, 4, 0);
    w.submit(0, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(1, &f.vote(1, Stance::Challenge, 9_000));
    w.run_until(CLOSES.plus_ms(5_000));
    let now = w.now;
    let r = w.engines[1].resolve(&f.proposal.id, now).expect("r");
    assert_eq!(r.finality.state, State::Escalated);
    assert!(
        w.events[1]
            .iter()
            .any(|e| matches!(e, Event::Certified { resolution }
        if resolution.finality.state == State::Escalated))
    );
    // A contradicting response by agent 0 dated at the close: evidence, no
    // divergence.
    let twin = f.vote_at(0, Stance::Challenge, 10_000, CLOSES);
    let ing = w.engines[1]
        .ingest(&twin.bytes, Origin::Sync, now)
        .expect("a member's response");
    assert!(
        ing.effects
            .iter()
            .any(|x| matches!(x, Effect::Event(Event::AfterCertification { .. })))
    );
    let effects = w.engines[1].tick(now);
    assert!(
        !effects
            .iter()
            .any(|x| matches!(x, Effect::Event(Event::Divergence { .. }))),
        "{effects:?}"
    );
}
