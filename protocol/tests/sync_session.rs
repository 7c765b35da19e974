//! Anti-entropy end to end: two engines holding random subsets of one set of
//! messages, spread over several summary buckets, hold the same messages
//! after one [`SyncSession`] each way, over encoded requests and responses.

mod common;

use std::sync::OnceLock;

use acp_protocol::build::{proposal, response};
use acp_protocol::engine::{Engine, EngineConfig, Origin};
use acp_protocol::sync::{BUCKET_MS, SyncRequest, SyncResponse, SyncSession};
use acp_protocol::{ContentId, SignedMessage, Stance, Timestamp};
use common::*;
use proptest::prelude::*;

/// Hour-long buckets the messages are spread over.
const BUCKETS: u64 = 4;
/// Long after every message: nothing is from the future.
const NOW: Timestamp = Timestamp(CREATED.0 + (BUCKETS + 2) * BUCKET_MS);

/// Per bucket, a proposal and a response to it by each of the fixture's
/// agents (the genesis policy is the fixture's). Signed once for all cases.
fn pool() -> &'static (Fixture, Vec<SignedMessage>) {
    static POOL: OnceLock<(Fixture, Vec<SignedMessage>)> = OnceLock::new();
    POOL.get_or_init(|| {
        let f = Fixture::standard();
        let mut msgs = Vec::new();
        for k in 0..BUCKETS {
            let at = Timestamp(CREATED.0 + k * BUCKET_MS);
            let p = proposal(
                &f.proposer,
                DOMAIN,
                f.policy.id,
                "loan.approve",
                &format!(r#"{{"round":{k}}}"#),
                at,
                at.plus_ms(60_000),
            )
            .expect("proposal");
            msgs.push(p.clone());
            for a in &f.agents {
                msgs.push(
                    response(a, &p, Stance::Endorse, 8_000, "", at.plus_ms(1_000))
                        .expect("response"),
                );
            }
        }
        (f, msgs)
    })
}

/// `pick` without the responses whose proposal it leaves out: what an
/// engine holds is admitted, so its set has no response without its
/// proposal. (A response still waiting for its proposal is not in the set
/// and not in the summary; a peer learns of it only in a round after it was
/// released.)
fn held(pick: &[bool]) -> Vec<bool> {
    let per = pool().0.agents.len() + 1;
    pick.iter()
        .enumerate()
        .map(|(i, p)| *p && pick[i - i % per])
        .collect()
}

/// An engine anchored at the fixture's policy that holds it and the pool
/// messages `pick` selects.
fn engine(pick: &[bool]) -> Engine {
    let (f, msgs) = pool();
    let mut e = Engine::new(EngineConfig::default());
    e.add_anchor(DOMAIN, f.policy.id);
    e.ingest(&f.policy.bytes, Origin::Local, NOW)
        .expect("policy");
    for (m, _) in msgs.iter().zip(pick).filter(|(_, p)| **p) {
        e.ingest(&m.bytes, Origin::Local, NOW).expect("admitted");
    }
    e
}

fn ids(e: &Engine) -> Vec<ContentId> {
    let mut v: Vec<ContentId> = e.set().iter().map(|m| m.id).collect();
    v.sort();
    v
}

/// One session pulling from `peer` into `local`; returns the requests sent.
fn pull(local: &mut Engine, peer: &Engine, batch: usize) -> Vec<SyncRequest> {
    let mut session = SyncSession::new(batch);
    session.sync(DOMAIN);
    let mut sent = Vec::new();
    while let Some(req) = session.poll_request() {
        let wire = SyncRequest::from_bytes(&req.to_bytes().expect("encode")).expect("decode");
        let resp = peer.answer(&wire);
        let resp = SyncResponse::from_bytes(&resp.to_bytes().expect("encode")).expect("decode");
        sent.push(req);
        assert!(sent.len() <= 64, "a session over a small set stays small");
        let msgs = session
            .handle_response(resp, local.set())
            .expect("an honest peer's answers are accepted");
        for m in msgs {
            // A message fetched while it waited for its proposal is a
            // duplicate once that arrives; only a rejection is wrong.
            if let Err(e) = local.ingest(&m, Origin::Sync, NOW) {
                assert!(!e.is_reject(), "synced message rejected: {e}");
            }
        }
    }
    assert!(session.is_done());
    sent
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn one_session_each_way_converges(
        picks in prop::collection::vec((any::<bool>(), any::<bool>()), pool().1.len()),
        batch in 1usize..=8,
    ) {
        let (pick_a, pick_b): (Vec<bool>, Vec<bool>) = picks.iter().copied().unzip();
        let (pick_a, pick_b) = (held(&pick_a), held(&pick_b));
        let either: Vec<bool> = pick_a.iter().zip(&pick_b).map(|(a, b)| *a || *b).collect();
        let mut a = engine(&pick_a);
        let mut b = engine(&pick_b);
        let union = engine(&either);

        for req in pull(&mut a, &b, batch) {
            if let SyncRequest::Fetch { ids } = req {
                prop_assert!(!ids.is_empty() && ids.len() <= batch);
            }
        }
        pull(&mut b, &a, batch);

        prop_assert_eq!(ids(&a), ids(&union));
        prop_assert_eq!(ids(&b), ids(&union));
        prop_assert_eq!(a.summary(DOMAIN), b.summary(DOMAIN));
        // Converged: the next round is one summary and nothing else.
        prop_assert_eq!(pull(&mut a, &b, batch).len(), 1);
    }
}

#[test]
fn the_pool_is_admitted_and_spans_several_buckets() {
    let n = pool().1.len();
    let all = engine(&vec![true; n]);
    assert_eq!(all.set().len(), n + 1);
    assert_eq!(all.summary(DOMAIN).buckets.len() as u64, BUCKETS);
}
