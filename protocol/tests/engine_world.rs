//! Several engines on a virtual clock, receiving messages in different
//! orders, end with identical resolutions and receipts.

mod common;

use acp_protocol::build::human_decision;
use acp_protocol::bundle::{AuditBundle, BundleError, verify_bundle};
use acp_protocol::engine::{Event, Origin};
use acp_protocol::{Body, Stance, Status, Verdict};
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

#[test]
fn engines_agree_whatever_the_delivery_order() {
    let f = Fixture::standard();
    let mut digests = Vec::new();
    for seed in [1u64, 7, 42, 1_000_003] {
        let mut w = World::new(4, seed, 500);
        w.now = CREATED;
        w.submit(0, &f.policy);
        w.submit(0, &f.proposal);
        // Each agent answers from its own node.
        for (i, (s, c)) in [
            (Stance::Endorse, 9_000),
            (Stance::Endorse, 7_000),
            (Stance::Challenge, 6_000),
            (Stance::Abstain, 5_000),
        ]
        .iter()
        .enumerate()
        {
            w.now = CREATED.plus_ms(100 * (i as u64 + 1));
            let node = i % 4;
            w.run_until(w.now);
            w.submit(node, &f.vote_at(i, *s, *c, w.now));
        }
        w.run_until(CLOSES.plus_ms(10_000));
        let d = w.digests(&f.proposal.id);
        assert!(d.windows(2).all(|p| p[0] == p[1]), "seed {seed}: {d:?}");
        // Every node signed a receipt; all receipts name the same resolution.
        let rs = receipts(&w, &f.proposal.id);
        assert_eq!(rs.len(), 4 * 4, "each node holds all four receipts");
        assert!(rs.iter().all(|r| r.1 == d[0] && r.2 == Status::Approved));
        digests.push(d[0]);
        // The early decision was announced before the close on every node.
        for ev in &w.events {
            assert!(ev.iter().any(|e| matches!(e, Event::Decided { resolution } if resolution.status == Status::Approved)));
        }
    }
    assert!(digests.windows(2).all(|p| p[0] == p[1]));
}

#[test]
fn late_counted_response_raises_divergence_and_a_new_receipt() {
    let f = Fixture::new(&[10_000; 3], acp_protocol::build::default_rules());
    let mut w = World::new(2, 3, 0);
    w.now = CREATED;
    w.submit(0, &f.policy);
    w.submit(0, &f.proposal);
    w.run_until(CREATED.plus_ms(10));
    w.submit(0, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(1, &f.vote(1, Stance::Endorse, 9_000));
    w.run_until(CLOSES.plus_ms(5_000));
    let first = w.digests(&f.proposal.id)[0];
    // Agent 2 signed a challenge before the close; it reaches node 1 only now.
    let late = f.vote_at(2, Stance::Challenge, 10_000, CLOSES);
    let now = w.now;
    let ing = w.engines[1]
        .ingest(&late.bytes, Origin::Sync, now)
        .expect("valid");
    assert!(!ing.effects.is_empty());
    let effects = w.engines[1].tick(now);
    let divergence = effects.iter().any(|e| matches!(e, acp_protocol::Effect::Event(Event::Divergence { previous, .. }) if previous.0 == first));
    assert!(divergence, "a finalized node must report the change");
    assert_ne!(
        w.engines[1]
            .resolve(&f.proposal.id, now)
            .expect("r")
            .digest(),
        first
    );
}

#[test]
fn equivocation_is_reported_and_human_decides_escalation() {
    let f = Fixture::new(&[10_000; 2], acp_protocol::build::default_rules());
    let mut w = World::new(3, 9, 200);
    w.now = CREATED;
    w.submit(0, &f.policy);
    w.submit(0, &f.proposal);
    w.run_until(CREATED.plus_ms(10));
    w.submit(1, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(2, &f.vote(0, Stance::Challenge, 9_000));
    w.submit(1, &f.vote(1, Stance::Abstain, 8_000));
    w.run_until(CLOSES.plus_ms(5_000));
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
    let decision = human_decision(
        &f.human,
        &f.proposal,
        Verdict::Approve,
        "checked by hand",
        w.now,
    )
    .expect("sign");
    w.submit(2, &decision);
    w.run_until(w.now.plus_ms(5_000));
    let d = w.digests(&f.proposal.id);
    assert!(d.windows(2).all(|p| p[0] == p[1]));
    let now = w.now;
    let r = w.engines[0].resolve(&f.proposal.id, now).expect("r");
    assert_eq!(r.status, Status::Approved);
    assert_eq!(r.human_decision, Some(decision.id));

    // The audit bundle of node 0 verifies offline, and tampering is caught.
    let bundle = AuditBundle::collect(w.engines[0].set(), &f.proposal.id).expect("bundle");
    let bytes = bundle.to_bytes().expect("encode");
    let report = verify_bundle(&bytes).expect("verifies");
    assert_eq!(report.resolution.digest(), d[0]);
    assert_eq!(report.receipts_matched.len(), 3);
    assert!(
        report.receipts_superseded >= 3,
        "escalation receipts were superseded"
    );
    // Drop the human decision: every node's receipts now disagree.
    let mut dropped = bundle.clone();
    dropped.messages.retain(|m| *m != decision.bytes);
    assert!(matches!(
        verify_bundle(&dropped.to_bytes().expect("encode")),
        Err(BundleError::ReceiptMismatch { .. })
    ));
    // Flip a byte inside a message.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(verify_bundle(&flipped).is_err());
}

#[test]
fn restart_from_store_keeps_receipts_and_signs_nothing_new() {
    let f = Fixture::standard();
    let mut w = World::new(2, 5, 100);
    w.now = CREATED;
    w.submit(0, &f.policy);
    w.submit(0, &f.proposal);
    w.run_until(CREATED.plus_ms(10));
    w.submit(1, &f.vote(0, Stance::Endorse, 9_000));
    w.submit(1, &f.vote(1, Stance::Endorse, 9_000));
    w.run_until(CLOSES.plus_ms(5_000));
    let before = w.digests(&f.proposal.id)[0];
    // Rebuild node 0 from everything it stored, in reverse order.
    let stored: Vec<Vec<u8>> = w.engines[0].set().iter().map(|m| m.bytes.clone()).collect();
    let mut restored = acp_protocol::Engine::new(acp_protocol::EngineConfig {
        receipt_key: Some(key(50)),
        ..acp_protocol::EngineConfig::default()
    });
    for b in stored.iter().rev() {
        restored
            .ingest(b, Origin::Store, w.now)
            .expect("stored bytes are valid");
    }
    let effects = restored.tick(w.now);
    assert!(
        effects
            .iter()
            .all(|e| !matches!(e, acp_protocol::Effect::Store { .. })),
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
    let mut e = acp_protocol::Engine::new(acp_protocol::EngineConfig::default());
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
fn early_decision_withdrawn_by_equivocation_is_a_divergence() {
    // Three members; two full endorsements decide early. One of them then
    // signs a second, different response: its vote is withdrawn and the
    // proposal closes escalated, which the engine must report.
    let f = Fixture::new(&[10_000; 3], acp_protocol::build::default_rules());
    let mut e = acp_protocol::Engine::new(acp_protocol::EngineConfig::default());
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
    assert!(early.iter().any(|x| matches!(x, acp_protocol::Effect::Event(Event::Decided { resolution }) if resolution.early)));
    let twin = f.vote(1, Stance::Challenge, 10_000);
    e.ingest(&twin.bytes, Origin::Peer, t).expect("valid");
    let fin = e.tick(CLOSES.plus_ms(60_000));
    assert!(fin.iter().any(|x| matches!(x, acp_protocol::Effect::Event(Event::Divergence { previous, .. }) if previous.1 == Status::Approved)));
    assert!(
        fin.iter()
            .any(|x| matches!(x, acp_protocol::Effect::Event(Event::Escalated { .. })))
    );
}
