//! Every rejection reason, each as its typed error.

mod common;

use acp_protocol::build::PolicyBuilder;
use acp_protocol::codec::{self, CodecError};
use acp_protocol::crypto::SignatureError;
use acp_protocol::engine::{Engine, EngineConfig, IngestError, Origin};
use acp_protocol::limits::{MAX_OTHER_BYTES, MAX_POLICY_BYTES, MAX_REASONING_BYTES};
use acp_protocol::{
    Body, Envelope, Kind, PublicKey, Rejection, SignatureEntry, Stance, Timestamp, decode_message,
};
use common::*;

fn reencode(env: &Envelope) -> Vec<u8> {
    codec::encode(env).expect("encode")
}

fn rejection(bytes: &[u8]) -> Rejection {
    decode_message(bytes).expect_err("must be rejected")
}

#[test]
fn accepts_a_well_formed_message() {
    let f = Fixture::standard();
    let msg = decode_message(&f.proposal.bytes).expect("valid");
    assert_eq!(msg.id, f.proposal.id);
    assert_eq!(msg.id, f.proposal.body().content_id().expect("id"));
}

#[test]
fn oversize_input_is_refused_before_decoding() {
    let big = vec![0u8; MAX_POLICY_BYTES + 1];
    assert!(matches!(
        rejection(&big),
        Rejection::Codec(CodecError::TooLarge { .. })
    ));
}

#[test]
fn oversize_for_kind() {
    let f = Fixture::standard();
    let mut env = f.proposal.envelope.clone();
    if let Body::Proposal(p) = &mut env.body {
        p.evidence = vec!["x".repeat(2_500); 32];
        p.action.payload = "y".repeat(16 * 1024);
        p.action.kind = "z".repeat(128);
    }
    let bytes = reencode(&env);
    assert!(bytes.len() > MAX_OTHER_BYTES);
    assert!(matches!(
        rejection(&bytes),
        Rejection::TooLargeForKind {
            kind: Kind::Proposal,
            ..
        }
    ));
}

#[test]
fn garbage_trailing_and_truncated_bytes() {
    let f = Fixture::standard();
    // The version byte is read first: text is a version nobody speaks.
    assert_eq!(
        rejection(b"not a message"),
        Rejection::UnsupportedVersion(b'n')
    );
    assert!(matches!(
        rejection(b"\x02not a message"),
        Rejection::Codec(CodecError::Malformed(_))
    ));
    let mut trailing = f.proposal.bytes.clone();
    trailing.push(0);
    assert_eq!(
        rejection(&trailing),
        Rejection::Codec(CodecError::TrailingBytes(1))
    );
    let truncated = &f.proposal.bytes[..f.proposal.bytes.len() - 1];
    assert!(matches!(
        rejection(truncated),
        Rejection::Codec(CodecError::Malformed(_))
    ));
}

#[test]
fn unsupported_version() {
    let f = Fixture::standard();
    // A version-1 message is refused by its version, whatever its body
    // (the v1 policy layout does not even decode as v2).
    for msg in [&f.proposal, &f.policy] {
        let mut bytes = msg.bytes.clone();
        bytes[0] = 1;
        assert_eq!(rejection(&bytes), Rejection::UnsupportedVersion(1));
    }
    assert_eq!(rejection(&[3]), Rejection::UnsupportedVersion(3));
}

#[test]
fn invalid_fields() {
    let f = Fixture::standard();
    type Mutation = Box<dyn Fn(&mut Body)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "domain",
            Box::new(|b| {
                if let Body::Response(r) = b {
                    r.domain = "Loans..Retail".into();
                }
            }),
        ),
        (
            "confidence_bps",
            Box::new(|b| {
                if let Body::Response(r) = b {
                    r.confidence_bps = 10_001;
                }
            }),
        ),
        (
            "reasoning",
            Box::new(|b| {
                if let Body::Response(r) = b {
                    r.reasoning = "r".repeat(MAX_REASONING_BYTES + 1);
                }
            }),
        ),
    ];
    let vote = f.vote(0, Stance::Endorse, 5_000);
    for (name, mutate) in cases {
        let mut env = vote.envelope.clone();
        mutate(&mut env.body);
        match rejection(&reencode(&env)) {
            Rejection::InvalidField { field, .. } => assert_eq!(field, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let mut env = f.proposal.envelope.clone();
    if let Body::Proposal(p) = &mut env.body {
        p.closes_at = p.created_at;
    }
    assert!(matches!(
        rejection(&reencode(&env)),
        Rejection::InvalidField {
            field: "closes_at",
            ..
        }
    ));
}

#[test]
fn policy_rules_unsorted_lists_and_weak_keys() {
    let f = Fixture::standard();
    let mut env = f.policy.envelope.clone();
    if let Body::Policy(p) = &mut env.body {
        p.members.swap(0, 1);
    }
    assert!(matches!(
        rejection(&reencode(&env)),
        Rejection::InvalidField {
            field: "members",
            ..
        }
    ));
    // The identity point is a small-order key: anyone could sign for it.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let org = key(200);
    let policy = PolicyBuilder::new(DOMAIN)
        .organization(&org, "o", 10_000)
        .member(&PublicKey(weak), 0, 10_000)
        .sign(&[&org])
        .expect("sign");
    assert!(matches!(
        rejection(&policy.bytes),
        Rejection::InvalidField {
            field: "members.agent",
            ..
        }
    ));
}

#[test]
fn wrong_signers() {
    let f = Fixture::standard();
    // Signed by someone other than the responder.
    let vote = f.vote(0, Stance::Endorse, 5_000);
    let imposter = key(9);
    let mut env = vote.envelope.clone();
    env.signatures = vec![SignatureEntry {
        signer: imposter.public(),
        signature: imposter.sign(Kind::Response.tag(), &vote.id),
    }];
    assert_eq!(rejection(&reencode(&env)), Rejection::WrongSigners);
    // A policy missing one organization's signature.
    let mut env = f.policy.envelope.clone();
    env.signatures.pop();
    assert_eq!(rejection(&reencode(&env)), Rejection::WrongSigners);
}

#[test]
fn bad_signatures() {
    let f = Fixture::standard();
    let vote = f.vote(0, Stance::Endorse, 5_000);
    // Signature over the right id but under another kind's tag.
    let mut env = vote.envelope.clone();
    env.signatures[0].signature = f.agents[0].sign(Kind::Proposal.tag(), &vote.id);
    assert!(matches!(
        rejection(&reencode(&env)),
        Rejection::BadSignature {
            error: SignatureError::Equation,
            ..
        }
    ));
    // A body changed after signing.
    let mut env = vote.envelope.clone();
    if let Body::Response(r) = &mut env.body {
        r.stance = Stance::Challenge;
    }
    assert!(matches!(
        rejection(&reencode(&env)),
        Rejection::BadSignature { .. }
    ));
    // s >= L.
    let mut env = vote.envelope.clone();
    env.signatures[0].signature.0[63] |= 0xf0;
    assert!(matches!(
        rejection(&reencode(&env)),
        Rejection::BadSignature {
            error: SignatureError::NonCanonicalScalar,
            ..
        }
    ));
}

#[test]
fn engine_ignores_duplicates_and_messages_from_the_future() {
    let f = Fixture::standard();
    let mut e = Engine::new(EngineConfig::default());
    e.add_anchor(DOMAIN, f.policy.id);
    let now = CREATED;
    e.ingest(&f.policy.bytes, Origin::Peer, now)
        .expect("policy");
    let first = e.ingest(&f.proposal.bytes, Origin::Peer, now).expect("new");
    assert_eq!(first.id, f.proposal.id);
    let dup = e
        .ingest(&f.proposal.bytes, Origin::Peer, now)
        .expect_err("dup");
    assert_eq!(dup, IngestError::Duplicate(f.proposal.id));
    assert!(!dup.is_reject());
    let future = f.vote_at(0, Stance::Endorse, 5_000, Timestamp(now.0 + 3_600_000));
    let err = e
        .ingest(&future.bytes, Origin::Peer, now)
        .expect_err("future");
    assert!(matches!(err, IngestError::FromTheFuture { .. }));
    assert!(!err.is_reject());
    let forged = e.ingest(b"junk", Origin::Peer, now).expect_err("junk");
    assert!(forged.is_reject());
    assert_eq!(e.set().len(), 2);
}

#[test]
fn weak_signer_key_is_refused() {
    // A response "signed" by the identity point with R = identity, s = 0:
    // the cofactored equation holds for any message, so the key is refused.
    let f = Fixture::standard();
    let mut env = f.vote(0, Stance::Endorse, 5_000).envelope.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    if let Body::Response(r) = &mut env.body {
        r.responder = PublicKey(identity);
    }
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    env.signatures = vec![SignatureEntry {
        signer: PublicKey(identity),
        signature: acp_protocol::Signature(sig),
    }];
    assert!(matches!(
        rejection(&reencode(&env)),
        Rejection::BadSignature {
            error: SignatureError::WeakKey,
            ..
        }
    ));
}

#[test]
fn equivocation_evidence_is_self_certifying() {
    use acp_protocol::evidence::{EquivocationEvidence, EvidenceError};
    let f = Fixture::standard();
    let a = f.vote(0, Stance::Endorse, 9_000);
    let b = f.vote(0, Stance::Challenge, 9_000);
    let set = f.set(&[a.clone(), b.clone(), f.vote(1, Stance::Endorse, 1_000)]);
    let ev = EquivocationEvidence::collect(&set, &f.proposal.id, &f.agents[0].public())
        .expect("agent 0 equivocated");
    let proven =
        EquivocationEvidence::verify_bytes(&ev.to_bytes().expect("encode")).expect("valid");
    assert_eq!(proven.agent, f.agents[0].public());
    assert_eq!(proven.proposal, f.proposal.id);
    assert!(EquivocationEvidence::collect(&set, &f.proposal.id, &f.agents[1].public()).is_none());
    // Two different agents' responses prove nothing.
    let mut unrelated = vec![a.clone(), f.vote(1, Stance::Endorse, 1_000)];
    unrelated.sort_by_key(|m| m.id);
    let unrelated = EquivocationEvidence {
        responses: unrelated.into_iter().map(|m| m.bytes).collect(),
    };
    assert_eq!(unrelated.verify(), Err(EvidenceError::Unrelated));
    // A tampered response is caught.
    let mut tampered = ev.clone();
    let last = tampered.responses[1].len() - 1;
    tampered.responses[1][last] ^= 1;
    assert!(matches!(
        tampered.verify(),
        Err(EvidenceError::Invalid { index: 1, .. })
    ));
}
