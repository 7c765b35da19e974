#![no_main]
//! A sequence of peer messages into one engine on a logical clock, with
//! ticks and queries in between. Nothing a peer sends may panic the engine.
//! Input format: see `acp_protocol_fuzz::parse`.

use acp_protocol::bundle::{AuditBundle, verify_bundle};
use acp_protocol::engine::{Effect, Engine, EngineConfig, Event, Origin};
use acp_protocol::evidence::EquivocationEvidence;
use acp_protocol::message::decode_unverified;
use acp_protocol::sync::{SyncRequest, SyncResponse};
use acp_protocol::{Keypair, SignedMessage, Timestamp};
use acp_protocol_fuzz::{FLAG_QUERY, FLAG_TICK, MODE_BATCH, MODE_MASK, MODE_UNVERIFIED, parse};
use libfuzzer_sys::fuzz_target;

/// The engine's receipt key (the seeds use a different node key).
const NODE_SEED: [u8; 32] = [0x5e; 32];

fuzz_target!(|data: &[u8]| {
    let (start, records) = parse(data);
    let mut engine = Engine::new(EngineConfig {
        receipt_key: Some(Keypair::from_seed(NODE_SEED)),
        ..EngineConfig::default()
    });
    let mut now = Timestamp(start);
    let mut equivocations = Vec::new();
    for r in &records {
        now = now.plus_ms(u64::from(r.dt_ms));
        // A node admits nothing in a domain without a trust anchor; the
        // first genesis-shaped policy of each domain becomes its anchor so
        // the input reaches resolve, certification and the pending buffer.
        if let Ok((envelope, id)) = decode_unverified(r.bytes)
            && let acp_protocol::Body::Policy(p) = &envelope.body
            && p.supersedes.is_none()
            && engine.set().anchor(&p.domain).is_none()
        {
            engine.add_anchor(&p.domain, id);
        }
        let result = match r.flags & MODE_MASK {
            MODE_UNVERIFIED => {
                decode_unverified(r.bytes)
                    .map_err(Into::into)
                    .and_then(|(envelope, id)| {
                        let msg = SignedMessage {
                            id,
                            envelope,
                            bytes: r.bytes.to_vec(),
                        };
                        engine.ingest_decoded(msg, Origin::Peer, now)
                    })
            }
            MODE_BATCH => engine
                .ingest_batch(&[(r.bytes, Origin::Peer)], now)
                .pop()
                .expect("one result per item"),
            _ => engine.ingest(r.bytes, Origin::Peer, now),
        };
        if let Ok(ing) = result {
            collect(&ing.effects, &mut equivocations);
            // A peer message is stored, never published again by the engine.
            assert!(
                !ing.effects
                    .iter()
                    .any(|e| matches!(e, Effect::Publish { id, .. } if *id == ing.id))
            );
        }
        if r.flags & FLAG_TICK != 0 {
            let effects = engine.tick(now);
            collect(&effects, &mut equivocations);
        }
        if r.flags & FLAG_QUERY != 0 {
            query(&mut engine, now, &equivocations);
        }
    }
    let effects = engine.tick(now);
    collect(&effects, &mut equivocations);
    query(&mut engine, now, &equivocations);
});

fn collect(
    effects: &[Effect],
    equivocations: &mut Vec<(acp_protocol::ContentId, acp_protocol::PublicKey)>,
) {
    for e in effects {
        if let Effect::Event(Event::Equivocation {
            proposal, agent, ..
        }) = e
        {
            equivocations.push((*proposal, *agent));
        }
    }
}

/// Everything a driver may ask the engine; bounded by the (small) set.
fn query(
    engine: &mut Engine,
    now: Timestamp,
    equivocations: &[(acp_protocol::ContentId, acp_protocol::PublicKey)],
) {
    let domains: Vec<String> = engine.set().domains().map(str::to_owned).collect();
    for domain in &domains {
        let _ = engine.trust_table(domain, now);
        let summary = engine.summary(domain);
        let resp = engine.answer(&SyncRequest::Summary {
            domain: domain.clone(),
        });
        assert_eq!(resp, SyncResponse::Summary(summary.clone()));
        check_response(&resp);
        for b in summary.buckets.iter().take(4) {
            let resp = engine.answer(&SyncRequest::Ids {
                domain: domain.clone(),
                bucket: b.bucket,
                after: None,
            });
            check_response(&resp);
            if let SyncResponse::Ids { ids, .. } = &resp {
                assert!(engine.missing(ids).is_empty());
                check_response(&engine.answer(&SyncRequest::Fetch { ids: ids.clone() }));
                if let Some(first) = ids.first() {
                    check_response(&engine.answer(&SyncRequest::Ids {
                        domain: domain.clone(),
                        bucket: b.bucket,
                        after: Some(*first),
                    }));
                }
            }
        }
        for (id, _status) in engine.proposals(domain, now) {
            let _ = engine.decision_package(&id, now);
            if let Some(bundle) = AuditBundle::collect(engine.set(), &id)
                && let Ok(bytes) = bundle.to_bytes()
            {
                let _ = verify_bundle(&bytes);
            }
        }
    }
    for (proposal, agent) in equivocations.iter().take(4) {
        if let Some(ev) = EquivocationEvidence::collect(engine.set(), proposal, agent)
            && let Ok(bytes) = ev.to_bytes()
        {
            let _ = EquivocationEvidence::verify_bytes(&bytes);
        }
    }
}

/// What the engine answers must itself survive the wire.
fn check_response(resp: &SyncResponse) {
    let bytes = resp.to_bytes().expect("an answer encodes");
    assert_eq!(
        SyncResponse::from_bytes(&bytes).as_ref(),
        Ok(resp),
        "an answer does not decode to itself"
    );
}
