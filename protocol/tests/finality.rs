//! Property tests of certified finality: certified results never change,
//! conflicting certificates always come with evidence, and finality is a
//! function of the set (order and duplication do not matter).
//!
//! The domain has four organizations, one member each, and the default
//! finality quorum q = 3 (n = 4, so 2q - n = 2 organizations must sign two
//! results for certificates to conflict; one may misbehave freely).

use acp_protocol::build::{
    PolicyBuilder, default_rules, human_decision, outcome_report, proposal, response,
};
use acp_protocol::finality::{Attested, State};
use acp_protocol::{
    Body, ContentId, Keypair, MessageSet, Outcome, Receipt, Resolution, SignedMessage, Stance,
    Status, Timestamp, Verdict, resolve,
};
use proptest::prelude::*;

const DOMAIN: &str = "payments.fraud";
const CREATED: Timestamp = Timestamp(5_000_000);
const CLOSES: Timestamp = Timestamp(5_060_000);
const ORGS: usize = 4;

fn key(n: u8) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[31] = 0xf1;
    Keypair::from_seed(seed)
}

fn root(i: usize) -> Keypair {
    key(200 + i as u8)
}
fn attestor(i: usize) -> Keypair {
    key(50 + i as u8)
}
fn agent(i: usize) -> Keypair {
    key(1 + i as u8)
}
fn human() -> Keypair {
    key(150)
}

struct World {
    policy: SignedMessage,
    proposal: SignedMessage,
}

fn world() -> World {
    let mut b = PolicyBuilder::new(DOMAIN)
        .proposer(&key(100).public())
        .human(&human().public())
        .reporter(&key(151).public())
        .rules(default_rules());
    for i in 0..ORGS {
        b = b
            .organization_attested(&root(i), &format!("org{i}"), 10_000, &attestor(i).public())
            .member(&agent(i).public(), i as u16, 10_000);
    }
    let roots: Vec<Keypair> = (0..ORGS).map(root).collect();
    let refs: Vec<&Keypair> = roots.iter().collect();
    let policy = b.sign(&refs).expect("policy");
    let proposal = proposal(
        &key(100),
        DOMAIN,
        policy.id,
        "payment.block",
        r#"{"id":7}"#,
        CREATED,
        CLOSES,
    )
    .expect("proposal");
    World { policy, proposal }
}

fn set_of(w: &World, msgs: &[SignedMessage]) -> MessageSet {
    let mut s = MessageSet::new();
    s.set_anchor(DOMAIN, w.policy.id);
    s.insert(w.policy.clone());
    s.insert(w.proposal.clone());
    for m in msgs {
        s.insert(m.clone());
    }
    s
}

fn vote(w: &World, i: usize, stance: Stance, c: u16, at: Timestamp) -> SignedMessage {
    response(&agent(i), &w.proposal, stance, c, &format!("agent {i}"), at).expect("response")
}

fn signed_receipt(by: &Keypair, w: &World, a: &Attested) -> SignedMessage {
    Body::Receipt(Receipt {
        node: by.public(),
        domain: DOMAIN.into(),
        proposal: w.proposal.id,
        closes_at: CLOSES,
        status: a.status,
        resolution: a.resolution,
        counted_root: a.counted_root,
        human_decision: a.human_decision,
    })
    .sign(&[by])
    .expect("receipt")
}

fn attested(r: &Resolution) -> Attested {
    Attested {
        human_decision: r.human_decision,
        status: r.status,
        resolution: r.digest(),
        counted_root: r.counted_root,
    }
}

fn status_of(n: u8) -> Status {
    [
        Status::Approved,
        Status::Rejected,
        Status::Escalated,
        Status::Invalid,
    ][usize::from(n % 4)]
}

/// A result nobody honest computed: a status and a made-up digest, in
/// round 0 or in round 1 (naming a made-up human decision).
fn made_up(status: u8, digest: u8, human_round: bool) -> Attested {
    Attested {
        human_decision: human_round.then_some(ContentId([digest ^ 0x55; 32])),
        status: if human_round {
            status_of(status % 2)
        } else {
            status_of(status)
        },
        resolution: ContentId([digest; 32]),
        counted_root: ContentId([digest.wrapping_add(1); 32]),
    }
}

/// Something anyone (or a misbehaving member) might add to the set.
#[derive(Clone, Debug)]
enum Add {
    /// A response signed inside the window, delivered whenever: agent 3's
    /// first vote (backdated), or a second response by a counted voter.
    Backdated(usize, Stance, u16, u64),
    /// An outcome report on the proposal.
    Report(bool, u64),
    /// A listed human's decision.
    Human(bool, u64),
    /// A policy for the domain by a stranger, or an amendment of the
    /// genesis signed by one organization only (below its quorum).
    RoguePolicy(bool),
    /// A receipt by a key that attests for no organization.
    OutsiderReceipt(u8, u8, bool),
    /// Attestor 0, which signed the certificate, signs another result.
    EquivocatingAttestor(u8, u8, bool),
    /// Attestor 3, which had not signed, signs some result (once).
    LateAttestor(u8, u8, bool),
}

fn add_strategy() -> impl Strategy<Value = Add> {
    let stance = prop_oneof![
        Just(Stance::Endorse),
        Just(Stance::Challenge),
        Just(Stance::Abstain)
    ];
    prop_oneof![
        (0usize..ORGS, stance, 0u16..=10_000, 0u64..=60_000)
            .prop_map(|(a, s, c, t)| Add::Backdated(a, s, c, t)),
        (any::<bool>(), 0u64..200_000).prop_map(|(f, t)| Add::Report(f, t)),
        (any::<bool>(), 0u64..200_000).prop_map(|(v, t)| Add::Human(v, t)),
        any::<bool>().prop_map(Add::RoguePolicy),
        (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(s, d, h)| Add::OutsiderReceipt(s, d, h)),
        (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(s, d, h)| Add::EquivocatingAttestor(s, d, h)),
        (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(s, d, h)| Add::LateAttestor(s, d, h)),
    ]
}

fn materialize(w: &World, adds: &[Add]) -> Vec<SignedMessage> {
    let mut late_attestor_signed = false;
    let mut out = Vec::new();
    for a in adds {
        let m = match a {
            Add::Backdated(i, s, c, t) => vote(w, *i, *s, *c, CREATED.plus_ms(*t)),
            Add::Report(failed, t) => {
                let o = if *failed {
                    Outcome::Failed
                } else {
                    Outcome::Succeeded
                };
                outcome_report(&key(151), &w.proposal, o, CLOSES.plus_ms(*t)).expect("report")
            }
            Add::Human(approve, t) => {
                let v = if *approve {
                    Verdict::Approve
                } else {
                    Verdict::Reject
                };
                human_decision(&human(), &w.proposal, v, "by hand", CLOSES.plus_ms(*t))
                    .expect("decision")
            }
            Add::RoguePolicy(amend) => {
                let stranger = key(99);
                let b = PolicyBuilder::new(DOMAIN)
                    .organization(&stranger, "rogue", 10_000)
                    .member(&stranger.public(), 0, 10_000)
                    .issued(2, CREATED);
                if *amend {
                    b.supersedes(w.policy.id)
                        .sign(&[&stranger])
                        .expect("policy")
                } else {
                    b.sign(&[&stranger]).expect("policy")
                }
            }
            Add::OutsiderReceipt(s, d, h) => signed_receipt(&key(99), w, &made_up(*s, *d, *h)),
            Add::EquivocatingAttestor(s, d, h) => {
                signed_receipt(&attestor(0), w, &made_up(*s, *d, *h))
            }
            Add::LateAttestor(s, d, h) => {
                if late_attestor_signed {
                    continue;
                }
                late_attestor_signed = true;
                signed_receipt(&attestor(3), w, &made_up(*s, *d, *h))
            }
        };
        out.push(m);
    }
    out
}

/// Three counted endorsements, and the certificate of attestors 0, 1, 2.
fn certified_base(w: &World, stance: Stance) -> (Vec<SignedMessage>, Attested) {
    let mut msgs: Vec<SignedMessage> = (0..3)
        .map(|i| vote(w, i, stance, 9_000, CREATED.plus_ms(1_000)))
        .collect();
    let r = resolve(&set_of(w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
    let result = attested(&r);
    msgs.extend((0..3).map(|i| signed_receipt(&attestor(i), w, &result)));
    (msgs, result)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// (a) Certified means final: whatever valid messages are added —
    /// backdated and equivocating responses, reports, human decisions,
    /// policies nobody authorized, receipts by outsiders, by the one
    /// tolerated misbehaving attestor, by a late attestor — the status to
    /// act on and the certified digest stay the same, at any later time.
    #[test]
    fn certified_is_final(
        approve in any::<bool>(),
        adds in prop::collection::vec(add_strategy(), 0..12),
        later in 0u64..1_000_000,
    ) {
        let w = world();
        let stance = if approve { Stance::Endorse } else { Stance::Challenge };
        let (mut msgs, certified) = certified_base(&w, stance);
        let before = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
        prop_assert_eq!(before.finality.state, State::Certified);
        let want = if approve { Status::Approved } else { Status::Rejected };
        prop_assert_eq!(before.final_status(), want);
        msgs.extend(materialize(&w, &adds));
        let after = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES.plus_ms(later)).expect("resolve");
        prop_assert_eq!(after.finality.state, State::Certified);
        prop_assert_eq!(after.final_status(), want);
        prop_assert_eq!(after.finality.certificate.expect("certificate").result, certified);
    }

    /// (b) Whenever two certificates conflict in one round — or a decided
    /// round-0 certificate coexists with a contest — the set holds receipts
    /// proving that at least 2q - n organizations' attestors signed two
    /// different results in that round.
    #[test]
    fn conflicting_certificates_come_with_evidence(
        // Few distinct results, so that certificates often conflict.
        signs in prop::collection::vec((0usize..ORGS, 0u8..2, 0u8..2, any::<bool>()), 0..24),
    ) {
        let w = world();
        let msgs: Vec<SignedMessage> = signs
            .iter()
            .map(|(a, s, d, h)| signed_receipt(&attestor(*a), &w, &made_up(*s, *d, *h)))
            .collect();
        let r = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
        let f = &r.finality;
        let (q, n) = (usize::from(f.quorum), usize::from(f.organizations));
        let bound = 2 * q - n;
        let equivocators = |human: bool| -> std::collections::BTreeSet<u16> {
            f.equivocations.iter().filter(|e| e.human_round == human).map(|e| e.organization).collect()
        };
        for human in [false, true] {
            let certs: Vec<_> = f.attestations.iter()
                .filter(|a| a.result.is_human() == human && a.organizations.len() >= q)
                .collect();
            if certs.len() > 1 {
                prop_assert!(equivocators(human).len() >= bound, "{} certificates, {:?}", certs.len(), f.equivocations);
                prop_assert!(!f.conflicting.is_empty() || f.state != State::Certified || human);
            }
        }
        let decided0 = f.attestations.iter().any(|a| !a.result.is_human()
            && a.result.status != Status::Escalated && a.organizations.len() >= q);
        if decided0 && f.contested {
            prop_assert!(equivocators(false).len() >= bound);
        }
        // Every equivocation is self-certifying: receipts by one attestor
        // for different results, all in the set.
        let set = set_of(&w, &msgs);
        for e in &f.equivocations {
            prop_assert!(e.receipts.len() >= 2);
            let signers: std::collections::BTreeSet<_> = e.receipts.iter().map(|id| match set.get(id).map(|m| m.body()) {
                Some(Body::Receipt(rc)) => Some(rc.node),
                _ => None,
            }).collect();
            prop_assert_eq!(signers.len(), 1);
            prop_assert!(signers.iter().all(Option::is_some));
        }
    }

    /// (c) Finality, like the rest of the resolution, is a function of the
    /// set: any order and duplication of the same messages gives the same
    /// bytes and the same finality, through the pure function and through
    /// an engine.
    #[test]
    fn finality_is_independent_of_order_and_duplication(
        adds in prop::collection::vec(add_strategy(), 0..10),
        seed in any::<u64>(),
        dups in prop::collection::vec(0usize..32, 0..6),
    ) {
        let w = world();
        let (mut msgs, _) = certified_base(&w, Stance::Endorse);
        msgs.extend(materialize(&w, &adds));
        let want = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
        let mut all = vec![w.policy.clone(), w.proposal.clone()];
        all.extend(msgs.iter().cloned());
        let mut rng = seed | 1;
        for i in (1..all.len()).rev() {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            all.swap(i, (rng as usize) % (i + 1));
        }
        for d in &dups {
            if let Some(m) = all.get(*d).cloned() {
                all.push(m);
            }
        }
        let mut engine = acp_protocol::Engine::new(acp_protocol::EngineConfig {
            max_future_skew_ms: u64::MAX,
            ..acp_protocol::EngineConfig::default()
        });
        engine.add_anchor(DOMAIN, w.policy.id);
        let mut set = MessageSet::new();
        set.set_anchor(DOMAIN, w.policy.id);
        for m in &all {
            set.insert(m.clone());
            let _ = engine.ingest(&m.bytes, acp_protocol::Origin::Peer, CLOSES);
        }
        let pure = resolve(&set, &w.proposal.id, CLOSES).expect("resolve");
        prop_assert_eq!(pure.to_bytes(), want.to_bytes());
        prop_assert_eq!(&pure.finality, &want.finality);
        // The engine admits only what the lineage authorizes, so it holds
        // no rogue policy or outsider receipt; neither changes a finality.
        let engine_r = engine.resolve(&w.proposal.id, CLOSES).expect("resolve");
        prop_assert_eq!(engine_r.to_bytes(), want.to_bytes());
        prop_assert_eq!(&engine_r.finality, &want.finality);
    }

    /// States only move toward finality as messages are added one by one
    /// (with at most one misbehaving attestor): provisional may become
    /// anything; escalated and contested never become provisional again;
    /// certified stays certified with the same result.
    #[test]
    fn states_only_move_toward_finality(
        votes in prop::collection::vec((0usize..ORGS, any::<bool>(), 0u16..=10_000), 0..6),
        adds in prop::collection::vec(add_strategy(), 0..14),
        honest_sign in prop::collection::vec((1usize..3, 0u8..4, 0u8..2), 0..4),
    ) {
        let w = world();
        let mut msgs: Vec<SignedMessage> = votes.iter().map(|(a, e, c)| {
            let s = if *e { Stance::Endorse } else { Stance::Challenge };
            vote(&w, *a, s, *c, CREATED.plus_ms(500))
        }).collect();
        // Attestors 1 and 2 sign once each (honest), attestor 0 anything.
        let mut signed = std::collections::BTreeSet::new();
        for (a, s, d) in &honest_sign {
            if signed.insert(*a) {
                msgs.push(signed_receipt(&attestor(*a), &w, &made_up(*s, *d, false)));
            }
        }
        msgs.extend(materialize(&w, &adds));
        let mut prev: Option<acp_protocol::finality::Finality> = None;
        for k in 0..=msgs.len() {
            let f = resolve(&set_of(&w, &msgs[..k]), &w.proposal.id, CLOSES).expect("resolve").finality;
            if let Some(p) = &prev {
                match p.state {
                    State::Certified => {
                        prop_assert_eq!(f.state, State::Certified);
                        prop_assert_eq!(f.certificate.as_ref().map(|c| c.result), p.certificate.as_ref().map(|c| c.result));
                    }
                    State::Escalated | State::Contested => prop_assert_ne!(f.state, State::Provisional),
                    State::Provisional => {}
                }
            }
            prev = Some(f);
        }
    }
}

/// The smallest case of the safety bound, spelled out: attestors 0 and 1
/// sign both results, 2 signs one, 3 the other. Two certificates, and the
/// evidence names exactly the two organizations that signed both.
#[test]
fn two_certificates_need_two_equivocating_organizations() {
    let w = world();
    let (x, y) = (made_up(0, 1, false), made_up(1, 2, false));
    let mut msgs = Vec::new();
    for (a, r) in [(0, x), (1, x), (2, x), (0, y), (1, y), (3, y)] {
        msgs.push(signed_receipt(&attestor(a), &w, &r));
    }
    let f = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES)
        .expect("resolve")
        .finality;
    assert_eq!(f.state, State::Certified);
    assert_eq!(f.certificate.expect("certificate").result, x.min(y));
    assert_eq!(f.conflicting.len(), 1);
    assert_eq!(f.equivocations.len(), 2);
    // One equivocator alone cannot do it: with only attestor 0 signing
    // both, y has two organizations.
    let one = [
        msgs[0].clone(),
        msgs[1].clone(),
        msgs[2].clone(),
        msgs[3].clone(),
        msgs[5].clone(),
    ];
    let f = resolve(&set_of(&w, &one), &w.proposal.id, CLOSES)
        .expect("resolve")
        .finality;
    assert!(f.conflicting.is_empty());
    assert_eq!(f.equivocations.len(), 1);
    assert_eq!(f.certificate.expect("certificate").result, x);
}

/// A contest: four organizations sign four different results. No result
/// can reach q = 3 without two equivocations, so a human decides, and the
/// human's result is certified in round 1.
#[test]
fn a_contest_is_settled_by_a_certified_human_decision() {
    let w = world();
    let mut msgs: Vec<SignedMessage> = (0..ORGS)
        .map(|a| signed_receipt(&attestor(a), &w, &made_up(a as u8, a as u8, false)))
        .collect();
    let r = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
    assert_eq!(r.finality.state, State::Contested);
    assert_eq!(r.final_status(), Status::Escalated);
    let decision = human_decision(
        &human(),
        &w.proposal,
        Verdict::Reject,
        "contested",
        CLOSES.plus_ms(1),
    )
    .expect("decision");
    msgs.push(decision.clone());
    let r = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
    assert_eq!(r.status, Status::Rejected);
    assert_eq!(r.human_decision, Some(decision.id));
    assert!(r.reasons.contains(&acp_protocol::Reason::Contested));
    let settled = attested(&r);
    msgs.extend((1..ORGS).map(|a| signed_receipt(&attestor(a), &w, &settled)));
    let r = resolve(&set_of(&w, &msgs), &w.proposal.id, CLOSES).expect("resolve");
    assert_eq!(r.finality.state, State::Certified);
    assert_eq!(r.final_status(), Status::Rejected);
}
