//! Property tests: order independence, idempotent merge, monotonicity,
//! codec round-trips, and tamper detection.

mod common;

use acp_protocol::build::default_rules;
use acp_protocol::engine::{Engine, EngineConfig, Origin};
use acp_protocol::{
    Body, DecisionRules, MessageSet, SignedMessage, Stance, Status, Timestamp, decode_message,
    resolve,
};
use common::*;
use proptest::prelude::*;

const AGENTS: usize = 7;

fn fixture() -> Fixture {
    Fixture::with_caps(
        &[10_000, 8_000, 6_000, 10_000, 3_000, 9_000, 7_000],
        DecisionRules {
            quorum_margin_bps: 1_500,
            min_participation_bps: 3_000,
            low_confidence_bps: 2_000,
            ..default_rules()
        },
        [6_000, 7_000],
    )
}

fn stance() -> impl Strategy<Value = Stance> {
    prop_oneof![
        Just(Stance::Endorse),
        Just(Stance::Challenge),
        Just(Stance::Abstain)
    ]
}

/// (agent, stance, confidence, issued offset in ms; offsets past 60 000 are late)
fn vote_spec() -> impl Strategy<Value = (usize, Stance, u16, u64)> {
    (0..AGENTS, stance(), 0u16..=10_000, 0u64..70_000)
}

fn votes(f: &Fixture, specs: &[(usize, Stance, u16, u64)]) -> Vec<SignedMessage> {
    specs
        .iter()
        .map(|(a, s, c, t)| f.vote_at(*a, *s, *c, CREATED.plus_ms(*t)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any permutation and duplication of a message set, merged through
    /// engines in different orders, resolves to the same bytes.
    #[test]
    fn permutation_and_duplication_give_identical_resolutions(
        specs in prop::collection::vec(vote_spec(), 0..12),
        order in Just(()).prop_perturb(|_, mut rng| {
            let mut idx: Vec<usize> = (0..40).collect();
            for i in (1..idx.len()).rev() {
                idx.swap(i, (rng.next_u32() as usize) % (i + 1));
            }
            idx
        }),
        dups in prop::collection::vec(0usize..40, 0..6),
        early in any::<bool>(),
    ) {
        let f = fixture();
        let mut msgs = vec![f.policy.clone(), f.proposal.clone()];
        msgs.extend(votes(&f, &specs));
        let forward = f.set(&msgs[2..]);
        let now = if early { CREATED.plus_ms(30_000) } else { CLOSES };
        let want = resolve(&forward, &f.proposal.id, now).expect("resolve").to_bytes();

        let mut shuffled: Vec<&SignedMessage> = order.iter().filter_map(|i| msgs.get(*i)).collect();
        shuffled.extend(dups.iter().filter_map(|i| msgs.get(*i)));
        let mut set = MessageSet::new();
        set.set_anchor(DOMAIN, f.policy.id);
        let mut engine = Engine::new(EngineConfig { max_future_skew_ms: u64::MAX, ..EngineConfig::default() });
        engine.add_anchor(DOMAIN, f.policy.id);
        for m in &shuffled {
            set.insert((*m).clone());
            let _ = engine.ingest(&m.bytes, Origin::Peer, Timestamp(0));
        }
        prop_assert_eq!(&resolve(&set, &f.proposal.id, now).expect("resolve").to_bytes(), &want);
        prop_assert_eq!(engine.resolve(&f.proposal.id, now).expect("resolve").to_bytes(), want);
    }

    /// Adding an endorsement never turns approve into reject, adding a
    /// challenge never turns reject into approve — early or final.
    #[test]
    fn resolution_is_monotone_in_each_stance(
        specs in prop::collection::vec(vote_spec(), 0..8),
        extra_agent in 0..AGENTS,
        confidence in 0u16..=10_000,
        endorse in any::<bool>(),
        early in any::<bool>(),
    ) {
        let f = fixture();
        // The newcomer must not already have voted (that would be equivocation).
        let specs: Vec<_> = specs.into_iter().filter(|s| s.0 != extra_agent).collect();
        let base = votes(&f, &specs);
        let stance = if endorse { Stance::Endorse } else { Stance::Challenge };
        let mut more = base.clone();
        more.push(f.vote(extra_agent, stance, confidence));
        let now = if early { CREATED.plus_ms(30_000) } else { CLOSES };
        let before = f.resolve_at(&base, now).status;
        let after = f.resolve_at(&more, now).status;
        if endorse {
            prop_assert!(!(before == Status::Approved && after == Status::Rejected));
        } else {
            prop_assert!(!(before == Status::Rejected && after == Status::Approved));
        }
        // An early decision is never contradicted by the final one.
        let early_r = f.resolve_at(&more, CREATED.plus_ms(30_000));
        if early_r.early {
            prop_assert_eq!(f.resolve_at(&more, CLOSES).status, early_r.status);
        }
    }

    /// Encode, decode and re-encode a signed response of arbitrary content.
    #[test]
    fn codec_round_trip(
        reasoning in ".{0,200}",
        evidence in prop::collection::vec("[ -~]{0,40}", 0..5),
        confidence in 0u16..=10_000,
        at in any::<u64>(),
        s in stance(),
    ) {
        let f = fixture();
        let body = Body::Response(acp_protocol::Response {
            responder: f.agents[0].public(),
            domain: DOMAIN.into(),
            proposal: f.proposal.id,
            stance: s,
            confidence_bps: confidence,
            reasoning,
            evidence,
            issued_at: Timestamp(at),
        });
        let signed = body.sign(&[&f.agents[0]]).expect("sign");
        let decoded = decode_message(&signed.bytes).expect("decode");
        prop_assert_eq!(&decoded, &signed);
        prop_assert_eq!(acp_protocol::codec::encode(&decoded.envelope).expect("encode"), signed.bytes);
    }

    /// Any single flipped byte of a signed message is rejected.
    #[test]
    fn any_flipped_byte_is_rejected(pos in any::<prop::sample::Index>(), flip in 1u8..=255, kind in 0usize..3) {
        let f = fixture();
        let msg = match kind {
            0 => f.policy.clone(),
            1 => f.proposal.clone(),
            _ => f.vote(2, Stance::Challenge, 4_200),
        };
        let mut bytes = msg.bytes.clone();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(decode_message(&bytes).is_err(), "flip at {} accepted", i);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// With outcome reports and equivocations feeding trust, an engine that
    /// receives messages in any order, resolving between arrivals (so its
    /// trust cache is exercised), ends where the pure function does.
    #[test]
    fn engine_trust_cache_matches_pure_resolve(
        first_votes in prop::collection::vec(vote_spec(), 1..8),
        outcome_failed in any::<bool>(),
        report_delay in 0u64..120_000,
        order in Just(()).prop_perturb(|_, mut rng| {
            let mut idx: Vec<usize> = (0..20).collect();
            for i in (1..idx.len()).rev() {
                idx.swap(i, (rng.next_u32() as usize) % (i + 1));
            }
            idx
        }),
    ) {
        use acp_protocol::build::{outcome_report, proposal, response};
        let f = fixture();
        let mut msgs = vec![f.policy.clone(), f.proposal.clone()];
        msgs.extend(votes(&f, &first_votes));
        let outcome = if outcome_failed { acp_protocol::Outcome::Failed } else { acp_protocol::Outcome::Succeeded };
        msgs.push(outcome_report(&f.reporter, &f.proposal, outcome, CLOSES.plus_ms(report_delay)).expect("sign"));
        let second = proposal(&f.proposer, DOMAIN, f.policy.id, "loan.approve", "{}", CLOSES.plus_ms(60_000), CLOSES.plus_ms(120_000)).expect("sign");
        msgs.push(second.clone());
        for a in 0..4 {
            msgs.push(response(&f.agents[a], &second, Stance::Endorse, 6_000 + a as u16 * 1_000, "", CLOSES.plus_ms(61_000)).expect("sign"));
        }
        let now = CLOSES.plus_ms(200_000);
        let mut engine = Engine::new(EngineConfig { max_future_skew_ms: u64::MAX, ..EngineConfig::default() });
        engine.add_anchor(DOMAIN, f.policy.id);
        let mut set = MessageSet::new();
        set.set_anchor(DOMAIN, f.policy.id);
        for i in order.iter().filter(|i| **i < msgs.len()) {
            let _ = engine.ingest(&msgs[*i].bytes, Origin::Peer, now);
            set.insert(msgs[*i].clone());
            engine.tick(now);
        }
        for m in &msgs {
            let _ = engine.ingest(&m.bytes, Origin::Peer, now);
            set.insert(m.clone());
        }
        engine.tick(now);
        for id in [f.proposal.id, second.id] {
            prop_assert_eq!(
                engine.resolve(&id, now).expect("r").to_bytes(),
                resolve(&set, &id, now).expect("r").to_bytes()
            );
        }
    }
}
