//! Regression inputs from fuzzing (`fuzz/`, see docs/RELIABILITY.md,
//! "Fuzzing").
//!
//! Every input a fuzz target crashed on is added here as a plain test that
//! feeds the exact bytes and asserts the decoder returns the expected error
//! instead of panicking. As of 2026-11-30 the targets have found no crash;
//! the tests below pin the boundary inputs the targets start from (empty,
//! truncated, trailing bytes, lying length prefixes, wrong tags) for every
//! decoder the fuzz targets cover, so a regression there fails in CI even
//! without a fuzz run.

mod common;

use acp_protocol::bundle::{AuditBundle, BundleError, verify_bundle};
use acp_protocol::codec::CodecError;
use acp_protocol::engine::{Engine, EngineConfig, IngestError, Origin};
use acp_protocol::evidence::{EquivocationEvidence, EvidenceError};
use acp_protocol::sync::{SyncRequest, SyncResponse};
use acp_protocol::{Rejection, Stance, Timestamp, decode_message};
use common::*;

/// A u64 length prefix far beyond the input: must fail without allocating.
const HUGE: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];

fn is_malformed(e: &CodecError) -> bool {
    matches!(e, CodecError::Malformed(_))
}

#[test]
fn empty_input_is_malformed_everywhere() {
    assert!(matches!(
        decode_message(&[]),
        Err(Rejection::Codec(CodecError::Malformed(_)))
    ));
    assert!(SyncRequest::from_bytes(&[]).is_err_and(|e| is_malformed(&e)));
    assert!(SyncResponse::from_bytes(&[]).is_err_and(|e| is_malformed(&e)));
    assert!(matches!(
        verify_bundle(&[]),
        Err(BundleError::Codec(CodecError::Malformed(_)))
    ));
    assert!(matches!(
        EquivocationEvidence::verify_bytes(&[]),
        Err(EvidenceError::Codec(CodecError::Malformed(_)))
    ));
}

#[test]
fn lying_length_prefixes_are_malformed() {
    // A bundle of another version is refused by its first byte.
    assert!(matches!(
        verify_bundle(&[1u8; 40]),
        Err(BundleError::Version(1))
    ));
    // SyncRequest::Fetch (tag 2) claiming 2^63 ids.
    let mut req = 2u32.to_le_bytes().to_vec();
    req.extend_from_slice(&HUGE);
    assert!(SyncRequest::from_bytes(&req).is_err_and(|e| is_malformed(&e)));
    // SyncResponse::Messages (tag 2) claiming 2^63 messages.
    let mut resp = 2u32.to_le_bytes().to_vec();
    resp.extend_from_slice(&HUGE);
    assert!(SyncResponse::from_bytes(&resp).is_err_and(|e| is_malformed(&e)));
    // A bundle: version 2, a proposal id, a genesis id, then 2^63 messages.
    let mut bundle = vec![2u8];
    bundle.extend_from_slice(&[0u8; 64]);
    bundle.extend_from_slice(&HUGE);
    assert!(matches!(
        verify_bundle(&bundle),
        Err(BundleError::Codec(CodecError::Malformed(_)))
    ));
    // Evidence whose first response claims 2^63 bytes.
    let mut ev = 1u64.to_le_bytes().to_vec();
    ev.extend_from_slice(&HUGE);
    assert!(matches!(
        EquivocationEvidence::verify_bytes(&ev),
        Err(EvidenceError::Codec(CodecError::Malformed(_)))
    ));
}

#[test]
fn unknown_enum_tags_are_malformed() {
    let tag = 7u32.to_le_bytes();
    assert!(SyncRequest::from_bytes(&tag).is_err_and(|e| is_malformed(&e)));
    assert!(SyncResponse::from_bytes(&tag).is_err_and(|e| is_malformed(&e)));
    // Envelope: version 2, body tag 6 (no such kind).
    let mut env = vec![2u8];
    env.extend_from_slice(&6u32.to_le_bytes());
    assert!(matches!(
        decode_message(&env),
        Err(Rejection::Codec(CodecError::Malformed(_)))
    ));
}

#[test]
fn every_prefix_and_one_extra_byte_of_real_messages_is_refused() {
    let f = Fixture::standard();
    let vote = f.vote(0, Stance::Endorse, 9_000);
    for msg in [&f.policy, &f.proposal, &vote] {
        for cut in 0..msg.bytes.len() {
            assert!(
                decode_message(&msg.bytes[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        let mut longer = msg.bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_message(&longer),
            Err(Rejection::Codec(CodecError::TrailingBytes(1)))
        );
    }
}

#[test]
fn truncated_containers_are_refused() {
    let f = Fixture::standard();
    let a = f.vote(0, Stance::Endorse, 9_000);
    let b = f.vote(0, Stance::Challenge, 9_000);
    let set = f.set(&[a, b]);
    let bundle = AuditBundle::collect(&set, &f.proposal.id)
        .expect("bundle")
        .to_bytes()
        .expect("bytes");
    verify_bundle(&bundle).expect("the whole bundle verifies");
    let ev = EquivocationEvidence::collect(&set, &f.proposal.id, &f.agents[0].public())
        .expect("evidence")
        .to_bytes()
        .expect("bytes");
    EquivocationEvidence::verify_bytes(&ev).expect("the whole evidence verifies");
    for cut in [0, 1, 8, 33, 41, bundle.len() / 2, bundle.len() - 1] {
        assert!(matches!(
            verify_bundle(&bundle[..cut]),
            Err(BundleError::Codec(_))
        ));
    }
    for cut in [0, 7, 8, 16, ev.len() / 2, ev.len() - 1] {
        assert!(matches!(
            EquivocationEvidence::verify_bytes(&ev[..cut]),
            Err(EvidenceError::Codec(_))
        ));
    }
}

#[test]
fn engine_refuses_garbage_from_a_peer_and_keeps_running() {
    let f = Fixture::standard();
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_anchor(DOMAIN, f.policy.id);
    let now = CREATED;
    for junk in [&[][..], &[1u8][..], &HUGE[..], &f.proposal.bytes[1..]] {
        assert!(matches!(
            engine.ingest(junk, Origin::Peer, now),
            Err(IngestError::Rejected(_))
        ));
    }
    assert!(engine.tick(now).is_empty());
    engine
        .ingest(&f.policy.bytes, Origin::Peer, now)
        .expect("policy");
    engine
        .ingest(&f.proposal.bytes, Origin::Peer, now)
        .expect("proposal");
    let _ = engine.tick(Timestamp(u64::MAX));
}
