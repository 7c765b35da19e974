//! Generates the ACP v0.2 test vectors in `docs/test-vectors/*.json`.
//!
//! Run from the workspace root:
//!
//! ```text
//! cargo run -p acp-protocol --example gen_vectors
//! ```
//!
//! Everything is derived from fixed key seeds and fixed timestamps: no
//! randomness, no clock. Running it twice gives byte-identical files. Each
//! resolution case asserts the outcome it was designed to hit, so a change in
//! the protocol that moves a boundary stops the generator instead of silently
//! rewriting the expectation. `protocol/tests/vectors.rs` checks the crate
//! against the files.

use std::fs;
use std::path::{Path, PathBuf};

use acp_protocol::bundle::{AuditBundle, BundleError, verify_bundle};
use acp_protocol::codec;
use acp_protocol::crypto::{self, VerifyItem, signing_input};
use acp_protocol::finality::State;
use acp_protocol::resolve::resolve;
use acp_protocol::sync::{Summary, SyncRequest, SyncResponse};
use acp_protocol::{
    Action, Body, ContentId, DecisionRules, DomainPolicy, Engine, EngineConfig, Envelope,
    HumanDecision, IngestError, Keypair, Member, MessageSet, Organization, Origin, Outcome,
    OutcomeReport, Proposal, PublicKey, Reason, Receipt, Resolution, Response, Signature,
    SignatureEntry, SignedMessage, Stance, Status, Timestamp, Verdict, decode_message,
};
use serde_json::{Value, json};

#[path = "../tests/support/rejection_json.rs"]
mod rejection_json;
use rejection_json::rejection_json;

/// `created_at` of the proposal every resolution case decides.
const T0: u64 = 1_800_000_000_000;
/// Its voting window.
const WINDOW: u64 = 60_000;
const CLOSES: u64 = T0 + WINDOW;
const DOMAIN: &str = "fraud.detection";

// ---------------------------------------------------------------- keys

/// Every key the vectors use: seed = 32 copies of one byte.
struct Keys {
    org_a: Keypair,
    org_b: Keypair,
    /// a1..a4: a1, a2 in org A; a3, a4 in org B.
    agents: Vec<Keypair>,
    proposer: Keypair,
    human1: Keypair,
    human2: Keypair,
    reporter: Keypair,
    /// The attestors of org A and org B (their nodes' receipt keys).
    node: Keypair,
    node_b: Keypair,
    outsider: Keypair,
    /// Two more organizations (roots and attestors) for four-organization
    /// certification cases.
    org_c: Keypair,
    org_d: Keypair,
    node_c: Keypair,
    node_d: Keypair,
}

fn kp(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

impl Keys {
    fn new() -> Self {
        Self {
            org_a: kp(1),
            org_b: kp(2),
            agents: (11..=14).map(kp).collect(),
            proposer: kp(20),
            human1: kp(30),
            human2: kp(31),
            reporter: kp(40),
            node: kp(50),
            node_b: kp(51),
            outsider: kp(60),
            org_c: kp(3),
            org_d: kp(4),
            node_c: kp(52),
            node_d: kp(53),
        }
    }

    fn named(&self) -> Vec<(&'static str, &Keypair)> {
        vec![
            ("org_a", &self.org_a),
            ("org_b", &self.org_b),
            ("a1", &self.agents[0]),
            ("a2", &self.agents[1]),
            ("a3", &self.agents[2]),
            ("a4", &self.agents[3]),
            ("proposer", &self.proposer),
            ("human1", &self.human1),
            ("human2", &self.human2),
            ("reporter", &self.reporter),
            ("node", &self.node),
            ("node_b", &self.node_b),
            ("outsider", &self.outsider),
            ("org_c", &self.org_c),
            ("org_d", &self.org_d),
            ("node_c", &self.node_c),
            ("node_d", &self.node_d),
        ]
    }

    fn a(&self, i: usize) -> &Keypair {
        &self.agents[i - 1]
    }
}

/// The identity point: a small-order ("weak") public key.
const IDENTITY: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

// ---------------------------------------------------------------- builders

#[derive(Clone)]
struct PolicyOpts {
    domain: String,
    revision: u64,
    margin: u16,
    min_participation: u16,
    low_confidence: u16,
    high_stakes: Option<u64>,
    cap_a: u16,
    cap_b: u16,
    min_window: u64,
    max_window: u64,
    /// Authority of a1..a4 and the proposer.
    authority: [u16; 5],
    /// Milliseconds before T0 the organizations signed it.
    issued_before: u64,
    /// The lineage policy this one amends.
    supersedes: Option<ContentId>,
    /// Org C and org D (no members) join, for four organizations.
    four_orgs: bool,
    /// Only org A signs (and is the only organization): an amendment below
    /// the amended policy's quorum.
    only_org_a: bool,
}

impl Default for PolicyOpts {
    fn default() -> Self {
        Self {
            domain: DOMAIN.into(),
            revision: 1,
            margin: 2_000,
            min_participation: 5_000,
            low_confidence: 2_000,
            high_stakes: Some(100_000_000),
            cap_a: 10_000,
            cap_b: 10_000,
            min_window: 1_000,
            max_window: 86_400_000,
            authority: [10_000; 5],
            issued_before: 86_400_000,
            supersedes: None,
            four_orgs: false,
            only_org_a: false,
        }
    }
}

fn policy_body(k: &Keys, o: &PolicyOpts) -> DomainPolicy {
    let org = |root: &Keypair, name: &str, cap: u16, attestor: &Keypair| Organization {
        root: root.public(),
        name: name.into(),
        weight_cap_bps: cap,
        attestor: attestor.public(),
    };
    let mut orgs = vec![org(&k.org_a, "Acme Bank", o.cap_a, &k.node)];
    if !o.only_org_a {
        orgs.push(org(&k.org_b, "Globex Payments", o.cap_b, &k.node_b));
    }
    if o.four_orgs {
        orgs.push(org(&k.org_c, "Initech Card Services", 10_000, &k.node_c));
        orgs.push(org(&k.org_d, "Umbrella Risk", 10_000, &k.node_d));
    }
    orgs.sort_by_key(|x| x.root);
    let idx = |root: PublicKey| orgs.iter().position(|x| x.root == root).unwrap_or(0) as u16;
    let (ia, ib) = (idx(k.org_a.public()), idx(k.org_b.public()));
    let mut members = vec![
        (k.a(1), ia, o.authority[0]),
        (k.a(2), ia, o.authority[1]),
        (k.a(3), ib, o.authority[2]),
        (k.a(4), ib, o.authority[3]),
        (&k.proposer, ia, o.authority[4]),
    ]
    .into_iter()
    .map(|(key, organization, authority_bps)| Member {
        agent: key.public(),
        organization,
        authority_bps,
    })
    .collect::<Vec<_>>();
    members.sort_by_key(|m| m.agent);
    let mut humans = vec![k.human1.public(), k.human2.public()];
    humans.sort();
    let n = orgs.len();
    DomainPolicy {
        domain: o.domain.clone(),
        revision: o.revision,
        issued_at: Timestamp(T0 - o.issued_before),
        organizations: orgs,
        members,
        humans,
        reporters: vec![k.reporter.public()],
        rules: DecisionRules {
            quorum_margin_bps: o.margin,
            min_participation_bps: o.min_participation,
            low_confidence_bps: o.low_confidence,
            high_stakes: o.high_stakes,
            min_window_ms: o.min_window,
            max_window_ms: o.max_window,
        },
        proposers: Vec::new(),
        supersedes: o.supersedes,
        approvers: Vec::new(),
        amendment_quorum: acp_protocol::build::default_quorum(n),
        finality_quorum: acp_protocol::build::default_quorum(n),
    }
}

fn sign(body: Body, keys: &[&Keypair]) -> SignedMessage {
    body.sign(keys).expect("encodable")
}

fn policy(k: &Keys, o: &PolicyOpts) -> SignedMessage {
    let mut roots = vec![&k.org_a];
    if !o.only_org_a {
        roots.push(&k.org_b);
    }
    if o.four_orgs {
        roots.extend([&k.org_c, &k.org_d]);
    }
    sign(Body::Policy(policy_body(k, o)), &roots)
}

#[derive(Clone)]
struct PropOpts {
    stakes: u64,
    created: u64,
    closes: u64,
    domain: String,
    label: &'static str,
}

impl Default for PropOpts {
    fn default() -> Self {
        Self {
            stakes: 250_000,
            created: T0,
            closes: CLOSES,
            domain: DOMAIN.into(),
            label: "block card 4242",
        }
    }
}

fn proposal_body(k: &Keys, policy: ContentId, o: &PropOpts) -> Proposal {
    Proposal {
        proposer: k.proposer.public(),
        domain: o.domain.clone(),
        policy,
        action: Action {
            kind: "card.block".into(),
            payload: format!("{{\"card\":\"{}\",\"merchant\":\"m-17\"}}", o.label),
        },
        confidence_bps: 8_000,
        stakes: o.stakes,
        evidence: vec!["evidence:txn-log-0001".into()],
        created_at: Timestamp(o.created),
        closes_at: Timestamp(o.closes),
        supersedes: None,
    }
}

fn proposal(k: &Keys, policy: ContentId, o: &PropOpts) -> SignedMessage {
    sign(Body::Proposal(proposal_body(k, policy, o)), &[&k.proposer])
}

fn response_body(
    who: &Keypair,
    proposal: ContentId,
    stance: Stance,
    confidence: u16,
    at: u64,
) -> Response {
    Response {
        responder: who.public(),
        domain: DOMAIN.into(),
        proposal,
        stance,
        confidence_bps: confidence,
        reasoning: format!("{stance:?} at {confidence} bps"),
        evidence: vec![],
        issued_at: Timestamp(at),
    }
}

fn response(
    who: &Keypair,
    proposal: ContentId,
    stance: Stance,
    confidence: u16,
    at: u64,
) -> SignedMessage {
    sign(
        Body::Response(response_body(who, proposal, stance, confidence, at)),
        &[who],
    )
}

fn decision(who: &Keypair, proposal: ContentId, verdict: Verdict, at: u64) -> SignedMessage {
    sign(
        Body::HumanDecision(HumanDecision {
            human: who.public(),
            domain: DOMAIN.into(),
            proposal,
            verdict,
            rationale: "reviewed the decision package".into(),
            decided_at: Timestamp(at),
        }),
        &[who],
    )
}

fn report(who: &Keypair, proposal: ContentId, outcome: Outcome, at: u64) -> SignedMessage {
    sign(
        Body::OutcomeReport(OutcomeReport {
            reporter: who.public(),
            domain: DOMAIN.into(),
            proposal,
            outcome,
            note: "chargeback data".into(),
            reported_at: Timestamp(at),
        }),
        &[who],
    )
}

// ---------------------------------------------------------------- json helpers

fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

fn keys_json(k: &Keys) -> Value {
    let keys: Vec<Value> = k
        .named()
        .into_iter()
        .map(|(name, kp)| {
            json!({
                "name": name,
                "seed": hexs(&kp.seed()),
                "public_key": kp.public().to_string(),
            })
        })
        .collect();
    json!({
        "description": "Ed25519 keys (RFC 8032): seed -> public key. Every key in the other files is one of these, or the weak key listed here.",
        "keys": keys,
        "weak_keys": [{
            "name": "identity",
            "public_key": hexs(&IDENTITY),
            "note": "the identity point (small order): policies must reject it",
        }],
    })
}

fn message_json(name: &str, note: &str, m: &SignedMessage) -> Value {
    let tag = m.body().kind().tag();
    let sigs: Vec<Value> = m
        .envelope
        .signatures
        .iter()
        .map(|s| {
            json!({
                "signer": s.signer.to_string(),
                "signing_input": hexs(&signing_input(tag, &m.id)),
                "signature": hexs(&s.signature.0),
            })
        })
        .collect();
    let sig_len = 8 + 96 * m.envelope.signatures.len();
    json!({
        "name": name,
        "note": note,
        "kind": m.body().kind(),
        "tag": String::from_utf8_lossy(tag),
        "hex": hexs(&m.bytes),
        "id_preimage_len": m.bytes.len() - sig_len,
        "id": m.id.to_string(),
        "signatures": sigs,
        "body": serde_json::to_value(m.body()).expect("json"),
    })
}

// ---------------------------------------------------------------- rejections

struct Rejected {
    name: &'static str,
    note: &'static str,
    bytes: Vec<u8>,
    /// Emit as `fill` instead of `hex` (the content does not matter).
    fill: bool,
}

fn envelope_bytes(version: u8, body: &Body, signatures: Vec<SignatureEntry>) -> Vec<u8> {
    codec::encode(&Envelope {
        version,
        body: body.clone(),
        signatures,
    })
    .expect("encodable")
}

fn entry(k: &Keypair, tag: &[u8], id: &ContentId) -> SignatureEntry {
    SignatureEntry {
        signer: k.public(),
        signature: k.sign(tag, id),
    }
}

/// Add the group order `L` to the scalar half of a signature (same scalar,
/// non-canonical encoding).
fn add_group_order(sig: &mut Signature) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let v = u16::from(sig.0[32 + i]) + u16::from(*l) + carry;
        sig.0[32 + i] = v as u8;
        carry = v >> 8;
    }
}

/// The smallest `y` (as a little-endian byte) whose encoding is not a point.
fn not_a_point() -> [u8; 32] {
    for y in 2u8..=255 {
        let mut b = [0u8; 32];
        b[0] = y;
        if PublicKey(b).is_weak()
            && curve25519_dalek::edwards::CompressedEdwardsY(b)
                .decompress()
                .is_none()
        {
            return b;
        }
    }
    panic!("no invalid encoding found")
}

fn rejections(k: &Keys, pol: &SignedMessage, prop: &SignedMessage) -> Vec<Rejected> {
    let mut out = Vec::new();
    let pid = prop.id;
    let resp = response(k.a(1), pid, Stance::Endorse, 9_000, T0 + 1_000);
    let rb = resp.bytes.clone();

    // --- codec
    out.push(Rejected {
        name: "oversize_message",
        note: "1 MiB + 1 bytes: rejected on length alone, before any decoding",
        bytes: vec![0u8; codec::MAX_MESSAGE_BYTES + 1],
        fill: true,
    });
    let mut trailing = rb.clone();
    trailing.push(0);
    out.push(Rejected {
        name: "trailing_byte",
        note: "a valid response followed by one 0x00 byte",
        bytes: trailing,
        fill: false,
    });
    let mut truncated = rb.clone();
    truncated.pop();
    out.push(Rejected {
        name: "truncated",
        note: "a valid response without its last byte",
        bytes: truncated,
        fill: false,
    });
    // Body tag (u32 at offset 1) with a high byte set: no such variant.
    let mut tag_high = rb.clone();
    tag_high[4] = 0x01;
    out.push(Rejected {
        name: "noncanonical_body_tag",
        note: "body variant tag 0x01000002 instead of 2 (enum tags are full u32 values)",
        bytes: tag_high,
        fill: false,
    });
    // Stance tag: after version(1) tag(4) responder(32) domain(8+len) proposal(32).
    let stance_at = 1 + 4 + 32 + 8 + DOMAIN.len() + 32;
    let mut stance = rb.clone();
    stance[stance_at] = 3;
    out.push(Rejected {
        name: "unknown_stance_tag",
        note: "stance tag 3 (only 0, 1, 2 exist)",
        bytes: stance,
        fill: false,
    });
    // Invalid UTF-8 in the reasoning: its first byte follows the stance, confidence, length.
    let reasoning_at = stance_at + 4 + 2 + 8;
    let mut utf = rb.clone();
    utf[reasoning_at] = 0xff;
    out.push(Rejected {
        name: "invalid_utf8",
        note: "first reasoning byte replaced by 0xff: strings must be UTF-8",
        bytes: utf,
        fill: false,
    });
    let mut len_prefix = rb.clone();
    len_prefix[reasoning_at - 8..reasoning_at].copy_from_slice(&u64::MAX.to_le_bytes());
    out.push(Rejected {
        name: "huge_length_prefix",
        note: "reasoning length prefix 2^64-1: must fail without allocating",
        bytes: len_prefix,
        fill: false,
    });
    // Option tag 2 in a proposal's `supersedes` (the last body byte).
    let mut opt = prop.bytes.clone();
    let opt_at = opt.len() - 8 - 96 - 1;
    opt[opt_at] = 2;
    out.push(Rejected {
        name: "noncanonical_option_tag",
        note: "proposal.supersedes Option tag 2 (only 0 = None, 1 = Some)",
        bytes: opt,
        fill: false,
    });

    // --- version
    let body = resp.body().clone();
    let v1id = ContentId::of(&codec::encode(&(1u8, &body)).expect("enc"));
    out.push(Rejected {
        name: "unsupported_version",
        note: "a version-1 message: version byte 1, the response signed under acp/v1/response over its own prefix; refused by its first byte",
        bytes: envelope_bytes(1, &body, vec![entry(k.a(1), b"acp/v1/response", &v1id)]),
        fill: false,
    });
    let v1_policy = {
        let mut b = pol.bytes.clone();
        b[0] = 1;
        b
    };
    out.push(Rejected {
        name: "unsupported_version_policy",
        note: "a policy with version byte 1: its body would not even decode under the v0.1 layout; the version is checked first",
        bytes: v1_policy,
        fill: false,
    });
    out.push(Rejected {
        name: "version_zero",
        note: "version byte 0",
        bytes: {
            let mut b = rb.clone();
            b[0] = 0;
            b
        },
        fill: false,
    });

    // --- kind size limit
    let mut big = response_body(k.a(1), pid, Stance::Endorse, 9_000, T0 + 1_000);
    big.reasoning = "x".repeat(70 * 1024);
    out.push(Rejected {
        name: "oversize_for_kind",
        note: "a response of more than 64 KiB (checked before field rules: the reasoning is also too long)",
        bytes: sign(Body::Response(big), &[k.a(1)]).bytes,
        fill: false,
    });

    // --- fields
    let bad = |b: Body, keys: &[&Keypair]| sign(b, keys).bytes;
    let mut r = response_body(k.a(1), pid, Stance::Endorse, 10_001, T0 + 1_000);
    out.push(Rejected {
        name: "confidence_above_10000",
        note: "response confidence 10001 bps",
        bytes: bad(Body::Response(r.clone()), &[k.a(1)]),
        fill: false,
    });
    r.confidence_bps = 9_000;
    r.domain = "Fraud.Detection".into();
    out.push(Rejected {
        name: "domain_uppercase",
        note: "domain labels are [a-z0-9_-]",
        bytes: bad(Body::Response(r.clone()), &[k.a(1)]),
        fill: false,
    });
    r.domain = "fraud..detection".into();
    out.push(Rejected {
        name: "domain_empty_label",
        note: "empty label between dots",
        bytes: bad(Body::Response(r.clone()), &[k.a(1)]),
        fill: false,
    });
    r.domain = DOMAIN.into();
    r.evidence = vec!["e".into(); 33];
    out.push(Rejected {
        name: "too_many_evidence_items",
        note: "33 evidence references (limit 32)",
        bytes: bad(Body::Response(r.clone()), &[k.a(1)]),
        fill: false,
    });
    r.evidence = vec![];
    r.reasoning = "r".repeat(8 * 1024 + 1);
    out.push(Rejected {
        name: "reasoning_too_long",
        note: "8193 bytes of reasoning (limit 8192)",
        bytes: bad(Body::Response(r), &[k.a(1)]),
        fill: false,
    });
    let mut p = proposal_body(k, pol.id, &PropOpts::default());
    p.closes_at = p.created_at;
    out.push(Rejected {
        name: "closes_at_not_after_created_at",
        note: "proposal closes_at == created_at",
        bytes: bad(Body::Proposal(p.clone()), &[&k.proposer]),
        fill: false,
    });
    p.closes_at = Timestamp(CLOSES);
    p.action.kind = String::new();
    out.push(Rejected {
        name: "empty_action_kind",
        note: "proposal action.kind is empty",
        bytes: bad(Body::Proposal(p), &[&k.proposer]),
        fill: false,
    });
    let base = policy_body(k, &PolicyOpts::default());
    let both = [&k.org_a, &k.org_b];
    let mut q = base.clone();
    q.members.swap(0, 1);
    out.push(Rejected {
        name: "policy_members_unsorted",
        note: "members must be sorted by agent key, unique",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.members[0].organization = 2;
    out.push(Rejected {
        name: "policy_member_unknown_organization",
        note: "member organization index 2 with two organizations",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.rules.min_window_ms = q.rules.max_window_ms + 1;
    out.push(Rejected {
        name: "policy_window_inverted",
        note: "min_window_ms > max_window_ms",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.rules.quorum_margin_bps = 10_001;
    out.push(Rejected {
        name: "policy_margin_above_10000",
        note: "quorum_margin_bps 10001",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.organizations.clear();
    q.members.clear();
    out.push(Rejected {
        name: "policy_without_organizations",
        note: "a policy must name 1..=256 organizations (it then has no required signer)",
        bytes: envelope_bytes(2, &Body::Policy(q), vec![]),
        fill: false,
    });
    // Weak keys.
    let mut q = base.clone();
    q.members.push(Member {
        agent: PublicKey(IDENTITY),
        organization: 0,
        authority_bps: 10_000,
    });
    q.members.sort_by_key(|m| m.agent);
    out.push(Rejected {
        name: "policy_weak_member_key",
        note: "a member key is the identity point (small order)",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.reporters.push(PublicKey(not_a_point()));
    q.reporters.sort();
    out.push(Rejected {
        name: "policy_reporter_not_a_point",
        note: "a reporter key that does not decode to a curve point counts as weak",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.proposers = vec![k.a(2).public(), k.a(1).public()];
    q.proposers.sort();
    q.proposers.reverse();
    out.push(Rejected {
        name: "policy_proposers_unsorted",
        note: "proposers must be sorted, unique",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.approvers = vec![k.org_a.public()];
    out.push(Rejected {
        name: "policy_approver_is_a_root",
        note: "an approver must not also be an organization root",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    let shared = q.organizations[0].attestor;
    q.organizations[1].attestor = shared;
    out.push(Rejected {
        name: "policy_shared_attestor",
        note: "two organizations name one attestor key: it would count twice",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.organizations[0].attestor = PublicKey(IDENTITY);
    out.push(Rejected {
        name: "policy_weak_attestor",
        note: "an attestor key of small order",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.finality_quorum = 1;
    out.push(Rejected {
        name: "policy_finality_quorum_not_a_majority",
        note: "finality quorum 1 of 2 organizations: two certificates could share no organization",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.amendment_quorum = 3;
    out.push(Rejected {
        name: "policy_amendment_quorum_above_organizations",
        note: "amendment quorum 3 with two organizations",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });
    let mut q = base.clone();
    q.approvers = vec![k.org_c.public()];
    out.push(Rejected {
        name: "policy_approver_did_not_sign",
        note: "an approver is a required signer: the policy is signed by the two roots only",
        bytes: bad(Body::Policy(q), &both),
        fill: false,
    });

    // --- signers
    let body = Body::Response(response_body(
        k.a(1),
        pid,
        Stance::Endorse,
        9_000,
        T0 + 1_000,
    ));
    let id = body.content_id().expect("id");
    out.push(Rejected {
        name: "signed_by_another_key",
        note: "a1's response signed by a2",
        bytes: envelope_bytes(2, &body, vec![entry(k.a(2), b"acp/v2/response", &id)]),
        fill: false,
    });
    out.push(Rejected {
        name: "no_signature",
        note: "a response with an empty signature list",
        bytes: envelope_bytes(2, &body, vec![]),
        fill: false,
    });
    out.push(Rejected {
        name: "extra_signature",
        note: "a response signed by its author and a second key",
        bytes: envelope_bytes(
            2,
            &body,
            vec![
                entry(k.a(1), b"acp/v2/response", &id),
                entry(k.a(2), b"acp/v2/response", &id),
            ],
        ),
        fill: false,
    });
    let pbody = pol.body().clone();
    let mut sigs = pol.envelope.signatures.clone();
    out.push(Rejected {
        name: "policy_missing_org_signature",
        note: "a two-organization policy signed by one root",
        bytes: envelope_bytes(2, &pbody, vec![sigs[0].clone()]),
        fill: false,
    });
    sigs.reverse();
    out.push(Rejected {
        name: "policy_signatures_unsorted",
        note: "both roots sign, but not in ascending key order",
        bytes: envelope_bytes(2, &pbody, sigs),
        fill: false,
    });

    // --- signatures
    let mut flipped = rb.clone();
    flipped[reasoning_at] ^= 0x01; // ASCII 'E' -> 'D': still valid UTF-8
    out.push(Rejected {
        name: "flipped_body_byte",
        note: "one bit of the reasoning flipped: new id, so the signature fails",
        bytes: flipped,
        fill: false,
    });
    let mut flipped = rb.clone();
    flipped[rb.len() - 1] ^= 0x01;
    out.push(Rejected {
        name: "flipped_signature_byte",
        note: "low bit of the last signature byte flipped",
        bytes: flipped,
        fill: false,
    });
    out.push(Rejected {
        name: "wrong_kind_tag",
        note: "a response signed under the proposal tag acp/v2/proposal",
        bytes: envelope_bytes(2, &body, vec![entry(k.a(1), b"acp/v2/proposal", &id)]),
        fill: false,
    });
    let mut e = entry(k.a(1), b"acp/v2/response", &id);
    add_group_order(&mut e.signature);
    out.push(Rejected {
        name: "non_canonical_s",
        note: "a valid signature with s replaced by s + L",
        bytes: envelope_bytes(2, &body, vec![e]),
        fill: false,
    });
    let mut e = entry(k.a(1), b"acp/v2/response", &id);
    e.signature.0[..32].copy_from_slice(&not_a_point());
    out.push(Rejected {
        name: "r_not_a_point",
        note: "signature R replaced by an encoding that is not a curve point",
        bytes: envelope_bytes(2, &body, vec![e]),
        fill: false,
    });
    out
}

// ---------------------------------------------------------------- resolutions

struct Case {
    name: &'static str,
    note: &'static str,
    messages: Vec<SignedMessage>,
    proposal: ContentId,
    now: u64,
    want: Status,
    want_reasons: Vec<Reason>,
    /// The trust anchor of the proposal's domain.
    anchor: Anchor,
    /// The finality state and the status to act on, when the case is about them.
    want_final: Option<(State, Status)>,
}

/// Which genesis the case's set trusts for the proposal's domain.
#[derive(Clone, Copy)]
enum Anchor {
    /// The first policy among the messages.
    FirstPolicy,
    /// This id (which may be absent from the set).
    Id(ContentId),
    /// None: the domain is not governed.
    None,
}

impl Case {
    fn set(&self) -> MessageSet {
        let mut set = MessageSet::new();
        if let Some(g) = self.genesis() {
            set.set_anchor(DOMAIN, g);
        }
        for m in &self.messages {
            set.insert(m.clone());
        }
        set
    }

    fn genesis(&self) -> Option<ContentId> {
        match self.anchor {
            Anchor::FirstPolicy => self
                .messages
                .iter()
                .find(|m| matches!(m.body(), Body::Policy(_)))
                .map(|m| m.id),
            Anchor::Id(id) => Some(id),
            Anchor::None => None,
        }
    }
}

/// Receipts by `attestors` for the closed resolution of `msgs` (anchored
/// at their first policy): what honest attestors sign at finalization.
fn certify(
    msgs: &[SignedMessage],
    proposal: ContentId,
    attestors: &[&Keypair],
) -> Vec<SignedMessage> {
    let c = Case {
        name: "certify",
        note: "",
        messages: msgs.to_vec(),
        proposal,
        now: u64::MAX,
        want: Status::Pending,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    };
    let r = resolve(&c.set(), &proposal, Timestamp(u64::MAX)).expect("resolve");
    attestors
        .iter()
        .map(|a| receipt_for(a, proposal, &r))
        .collect()
}

fn receipt_for(node: &Keypair, proposal: ContentId, r: &Resolution) -> SignedMessage {
    attest(
        node,
        proposal,
        r.status,
        r.digest(),
        r.counted_root,
        r.human_decision,
    )
}

fn attest(
    node: &Keypair,
    proposal: ContentId,
    status: Status,
    resolution: ContentId,
    counted_root: ContentId,
    human_decision: Option<ContentId>,
) -> SignedMessage {
    sign(
        Body::Receipt(Receipt {
            node: node.public(),
            domain: DOMAIN.into(),
            proposal,
            closes_at: Timestamp(CLOSES),
            status,
            resolution,
            counted_root,
            human_decision,
        }),
        &[node],
    )
}

fn resolution_json(c: &Case) -> (Value, Resolution) {
    let set = c.set();
    let r = resolve(&set, &c.proposal, Timestamp(c.now)).expect("proposal in set");
    if let Some((state, status)) = c.want_final {
        assert_eq!(
            (r.finality.state, r.final_status()),
            (state, status),
            "case {} did not reach its finality",
            c.name
        );
    }
    assert_eq!(
        (r.status, &r.reasons),
        (c.want, &c.want_reasons),
        "case {} did not hit its target",
        c.name
    );
    let v = json!({
        "name": c.name,
        "note": c.note,
        "messages": c.messages.iter().map(|m| hexs(&m.bytes)).collect::<Vec<_>>(),
        "proposal": c.proposal.to_string(),
        "now": c.now,
        "anchor": c.genesis().map(|g| g.to_string()),
        "expected": {
            "status": r.status,
            "final_status": r.final_status(),
            "finality": serde_json::to_value(&r.finality).expect("json"),
            "reasons": r.reasons,
            "is_final": r.is_final,
            "early": r.early,
            "endorse": r.tally.endorse,
            "challenge": r.tally.challenge,
            "human_decision": r.human_decision.map(|h| h.to_string()),
            "counted_root": r.counted_root.to_string(),
            "digest": r.digest().to_string(),
            "resolution_hex": hexs(&r.to_bytes()),
            "resolution": serde_json::to_value(&r).expect("json"),
        }
    });
    (v, r)
}

fn cases(k: &Keys) -> Vec<Case> {
    let mut out = Vec::new();
    let std_policy = policy(k, &PolicyOpts::default());
    let std_prop = proposal(k, std_policy.id, &PropOpts::default());
    let pid = std_prop.id;
    let a = |i| k.a(i);
    let t = |ms: u64| T0 + ms;
    let base = || vec![std_policy.clone(), std_prop.clone()];
    let with = |rs: Vec<SignedMessage>| {
        let mut v = base();
        v.extend(rs);
        v
    };
    use Stance::{Abstain, Challenge, Endorse};

    // Margin m = 2000: approve iff 10000 E > 10000 C + 2000 (E + C), i.e.
    // 8 E > 12 C. a1 endorses, a3 challenges (equal authority and trust),
    // a2 and a4 abstain so participation is full.
    let margin = |ce: u16, cc: u16| {
        with(vec![
            response(a(1), pid, Endorse, ce, t(1_000)),
            response(a(3), pid, Challenge, cc, t(1_000)),
            response(a(2), pid, Abstain, 5_000, t(1_000)),
            response(a(4), pid, Abstain, 5_000, t(1_000)),
        ])
    };
    out.push(Case {
        name: "margin_exact",
        note: "E/C = 3000/2000: 10000 E == 10000 C + m (E + C), strict inequality fails",
        messages: margin(3_000, 2_000),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "margin_plus_one_bp",
        note: "E/C = 3001/2000: one basis point above the margin approves",
        messages: margin(3_001, 2_000),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "margin_minus_one_bp",
        note: "E/C = 2999/2000: one basis point below the margin escalates",
        messages: margin(2_999, 2_000),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "reject_margin_plus_one_bp",
        note: "C/E = 3001/2000: the mirrored inequality rejects",
        messages: margin(2_000, 3_001),
        proposal: pid,
        now: CLOSES,
        want: Status::Rejected,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "reject_margin_exact",
        note: "C/E = 3000/2000: exactly at the margin does not reject",
        messages: margin(2_000, 3_000),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "exact_tie",
        note: "E == C: no margin",
        messages: margin(7_000, 7_000),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let zero = policy(
        k,
        &PolicyOpts {
            margin: 0,
            revision: 2,
            ..PolicyOpts::default()
        },
    );
    let zprop = proposal(k, zero.id, &PropOpts::default());
    let zid = zprop.id;
    out.push(Case {
        name: "exact_tie_zero_margin",
        note: "E == C with margin 0: 10000 E > 10000 C is still false",
        messages: vec![
            zero.clone(),
            zprop.clone(),
            response(a(1), zid, Endorse, 7_000, t(1_000)),
            response(a(3), zid, Challenge, 7_000, t(1_000)),
        ],
        proposal: zid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "zero_margin_one_bp",
        note: "margin 0: E one basis point above C approves",
        messages: vec![
            zero,
            zprop,
            response(a(1), zid, Endorse, 7_001, t(1_000)),
            response(a(3), zid, Challenge, 7_000, t(1_000)),
        ],
        proposal: zid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Participation: 50% of the potential weight must respond (a1..a4 equal).
    out.push(Case {
        name: "low_participation",
        note: "one of four eligible members responds: 25% < 50%",
        messages: with(vec![response(a(1), pid, Endorse, 9_000, t(1_000))]),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::LowParticipation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "participation_at_minimum",
        note: "two of four respond (one abstains): exactly 50% is enough",
        messages: with(vec![
            response(a(1), pid, Endorse, 9_000, t(1_000)),
            response(a(2), pid, Abstain, 0, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Low confidence: floor 2000 on the weighted mean confidence of decisive votes.
    out.push(Case {
        name: "confidence_at_floor",
        note: "decisive votes at 2000 bps mean confidence: at the floor is enough",
        messages: with(vec![
            response(a(1), pid, Endorse, 2_000, t(1_000)),
            response(a(2), pid, Endorse, 2_000, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "low_confidence",
        note: "decisive votes at 1999 and 2000 bps: mean below the floor",
        messages: with(vec![
            response(a(1), pid, Endorse, 1_999, t(1_000)),
            response(a(2), pid, Endorse, 2_000, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::LowConfidence],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // High stakes.
    let hs = proposal(
        k,
        std_policy.id,
        &PropOpts {
            stakes: 100_000_000,
            label: "wire 1m",
            ..PropOpts::default()
        },
    );
    let hid = hs.id;
    let unanimous = |id| {
        (1..=4)
            .map(|i| response(a(i), id, Endorse, 10_000, t(1_000)))
            .collect::<Vec<_>>()
    };
    let mut msgs = vec![std_policy.clone(), hs.clone()];
    msgs.extend(unanimous(hid));
    out.push(Case {
        name: "high_stakes",
        note: "stakes == high_stakes threshold: escalated even when unanimous",
        messages: msgs.clone(),
        proposal: hid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::HighStakes],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "high_stakes_never_early",
        note: "unanimous before closes_at, but high stakes wait for the close",
        messages: msgs.clone(),
        proposal: hid,
        now: T0 + 30_000,
        want: Status::Pending,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut decided = msgs.clone();
    decided.extend(certify(&msgs, hid, &[&k.node, &k.node_b]));
    decided.push(decision(&k.human1, hid, Verdict::Approve, CLOSES));
    out.push(Case {
        name: "high_stakes_human_approves",
        note: "both attestors certify the escalation; a listed human decides at closes_at: round 1 computes approved, reasons kept",
        messages: decided,
        proposal: hid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![Reason::HighStakes],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Organization caps: org A capped at 30% of the total potential.
    let capped = policy(
        k,
        &PolicyOpts {
            cap_a: 3_000,
            revision: 3,
            ..PolicyOpts::default()
        },
    );
    let cprop = proposal(k, capped.id, &PropOpts::default());
    let cid = cprop.id;
    let votes = |id| {
        vec![
            response(a(1), id, Endorse, 10_000, t(1_000)),
            response(a(2), id, Endorse, 10_000, t(1_000)),
            response(a(3), id, Challenge, 9_000, t(1_000)),
        ]
    };
    let mut m = vec![capped, cprop];
    m.extend(votes(cid));
    out.push(Case {
        name: "cap_hit",
        note: "org A's endorsements (1e12) are capped at 30% of the total potential (6e11): no margin",
        messages: m,
        proposal: cid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "cap_not_set",
        note: "the same votes without a cap approve",
        messages: with(votes(pid)),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Equivocation.
    out.push(Case {
        name: "equivocation_escalates",
        note: "a1 signs an endorsement and a challenge: both excluded; a2 vs a3 leaves no margin",
        messages: with(vec![
            response(a(1), pid, Endorse, 9_000, t(1_000)),
            response(a(1), pid, Challenge, 9_000, t(2_000)),
            response(a(2), pid, Endorse, 8_000, t(1_000)),
            response(a(3), pid, Challenge, 8_000, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin, Reason::Equivocation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "equivocation_still_decides",
        note: "a4 equivocates, the other three endorse: approved, a4 listed as equivocator",
        messages: with(vec![
            response(a(1), pid, Endorse, 9_000, t(1_000)),
            response(a(2), pid, Endorse, 9_000, t(1_000)),
            response(a(3), pid, Endorse, 9_000, t(1_000)),
            response(a(4), pid, Challenge, 9_000, t(1_000)),
            response(a(4), pid, Challenge, 8_999, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let early_votes = vec![
        response(a(1), pid, Endorse, 10_000, t(1_000)),
        response(a(2), pid, Endorse, 10_000, t(1_000)),
        response(a(3), pid, Endorse, 10_000, t(1_000)),
    ];
    let mut after = with(early_votes.clone());
    after.push(response(a(1), pid, Challenge, 10_000, t(5_000)));
    after.push(response(a(2), pid, Challenge, 10_000, t(5_000)));
    after.push(response(a(4), pid, Challenge, 10_000, t(6_000)));
    out.push(Case {
        name: "equivocation_after_early_decision",
        note: "the set of early_decision (approved early), plus second responses by a1 and a2 and a challenge by a4: at the close it is no longer approved",
        messages: after,
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin, Reason::Equivocation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Deadlines.
    out.push(Case {
        name: "response_at_closes_at_counts",
        note: "issued_at == closes_at counts",
        messages: with(vec![
            response(a(1), pid, Endorse, 9_000, CLOSES),
            response(a(2), pid, Endorse, 9_000, CLOSES),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "late_response",
        note: "a2 signs at closes_at + 1: excluded as late, participation falls to 25%",
        messages: with(vec![
            response(a(1), pid, Endorse, 9_000, CLOSES),
            response(a(2), pid, Endorse, 9_000, CLOSES + 1),
        ]),
        proposal: pid,
        now: CLOSES + 10_000,
        want: Status::Escalated,
        want_reasons: vec![Reason::LowParticipation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "response_before_proposal",
        note: "a2 signs at created_at - 1: excluded",
        messages: with(vec![
            response(a(1), pid, Endorse, 9_000, T0),
            response(a(2), pid, Endorse, 9_000, T0 - 1),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::LowParticipation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Early decision.
    out.push(Case {
        name: "early_decision",
        note: "three of four endorse at full confidence: even a full-confidence challenge by a4 cannot stop approval",
        messages: with(early_votes.clone()),
        proposal: pid,
        now: T0 + 10_000,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "not_early",
        note: "two of four endorse: a3 and a4 could still block, so pending",
        messages: with(early_votes[..2].to_vec()),
        proposal: pid,
        now: T0 + 10_000,
        want: Status::Pending,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "early_decision_reject",
        note: "three of four challenge at full confidence before the close",
        messages: with(
            (1..=3)
                .map(|i| response(a(i), pid, Challenge, 10_000, t(1_000)))
                .collect(),
        ),
        proposal: pid,
        now: T0 + 10_000,
        want: Status::Rejected,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "pending_no_votes",
        note: "nothing yet, before closes_at",
        messages: base(),
        proposal: pid,
        now: T0,
        want: Status::Pending,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "closed_no_votes",
        note: "nothing at closes_at: low participation and no margin",
        messages: base(),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin, Reason::LowParticipation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Who counts.
    out.push(Case {
        name: "proposer_and_outsider_do_not_count",
        note: "the proposer (a member) and a non-member endorse: neither counts; a1 and a2 decide",
        messages: with(vec![
            response(&k.proposer, pid, Endorse, 10_000, t(1_000)),
            response(&k.outsider, pid, Endorse, 10_000, t(1_000)),
            response(a(1), pid, Endorse, 6_000, t(1_000)),
            response(a(2), pid, Challenge, 4_500, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut other_domain = response_body(a(1), pid, Endorse, 10_000, t(1_000));
    other_domain.domain = "fraud.other".into();
    out.push(Case {
        name: "wrong_domain_response",
        note: "a1's response names another domain: excluded",
        messages: with(vec![
            sign(Body::Response(other_domain), &[a(1)]),
            response(a(2), pid, Endorse, 10_000, t(1_000)),
        ]),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::LowParticipation],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });

    // Human decisions: eligible only once round 0 certified the escalation
    // (or is contested). `tie` escalates; both attestors certify it.
    let both = [&k.node, &k.node_b];
    let mut tie = margin(7_000, 7_000);
    tie.extend(certify(&tie, pid, &both));
    let mut h = tie.clone();
    h.push(decision(&k.human1, pid, Verdict::Reject, CLOSES + 10));
    h.push(decision(&k.human2, pid, Verdict::Approve, CLOSES + 5));
    h.push(decision(&k.human1, pid, Verdict::Reject, CLOSES - 1));
    h.push(decision(&k.outsider, pid, Verdict::Reject, CLOSES));
    out.push(Case {
        name: "human_decision_earliest_wins",
        note: "the escalation is certified; human2 approves at close+5, human1 rejects at close+10: earliest wins; a decision before closes_at and one by an unlisted key are ignored",
        messages: h,
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Approved,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut h = tie.clone();
    h.push(decision(&k.human1, pid, Verdict::Reject, CLOSES + 5));
    h.push(decision(&k.human2, pid, Verdict::Approve, CLOSES + 5));
    out.push(Case {
        name: "human_decision_tie_by_id",
        note: "two decisions at the same decided_at: the smaller content id wins",
        messages: h,
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Escalated, // replaced below by the actual winner
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut approved = margin(3_001, 2_000);
    approved.extend(certify(&approved, pid, &both));
    let mut h = approved.clone();
    h.push(decision(&k.human1, pid, Verdict::Reject, CLOSES + 1));
    out.push(Case {
        name: "human_decision_ignored_without_escalation",
        note: "votes approve and both attestors certify it; a listed human rejects after the close: ignored, human decisions settle only escalated or contested proposals",
        messages: h,
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Certified, Status::Approved)),
    });
    let mut uncert = margin(7_000, 7_000);
    uncert.push(decision(&k.human1, pid, Verdict::Reject, CLOSES + 1));
    out.push(Case {
        name: "human_decision_waits_for_certified_escalation",
        note: "a tie escalates but no attestor has signed yet: the human decision is not read",
        messages: uncert,
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Provisional, Status::Escalated)),
    });
    // A human decision racing a response signed before the close but
    // delivered after the decision: the human decision settles the status.
    let mut race = with(vec![
        response(a(1), pid, Endorse, 7_000, t(1_000)),
        response(a(3), pid, Challenge, 7_000, t(1_000)),
        response(a(4), pid, Abstain, 5_000, t(1_000)),
    ]);
    race.extend(certify(&race, pid, &both));
    let human_reject = decision(&k.human2, pid, Verdict::Reject, CLOSES + 5);
    race.push(human_reject.clone());
    out.push(Case {
        name: "human_decision_before_late_response",
        note: "tie escalated and certified, human2 rejects at close+5: round 1 computes the rejection; not final until attestors certify it",
        messages: race.clone(),
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Rejected,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Escalated, Status::Escalated)),
    });
    let mut settled = race.clone();
    settled.extend(certify(&race, pid, &both));
    out.push(Case {
        name: "human_decision_certified",
        note: "both attestors certify the human's result (round 1, receipts name the decision): rejected, final",
        messages: settled.clone(),
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Rejected,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Certified, Status::Rejected)),
    });
    race.push(response(a(2), pid, Endorse, 10_000, CLOSES));
    out.push(Case {
        name: "human_decision_with_late_response",
        note: "the race set plus a2's endorsement signed at closes_at (delivered later): votes alone would now approve, round 1 still applies the rejection (the escalation is certified); the digest differs from the case above",
        messages: race,
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Rejected,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Escalated, Status::Escalated)),
    });
    let mut late_after = settled;
    late_after.push(response(a(2), pid, Endorse, 10_000, CLOSES));
    out.push(Case {
        name: "certified_then_backdated_response",
        note: "after the human's result is certified, a2's endorsement dated at closes_at arrives: the computation changes, the certified result does not",
        messages: late_after,
        proposal: pid,
        now: CLOSES + 20,
        want: Status::Rejected,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Certified, Status::Rejected)),
    });

    // Certificates of the votes (round 0).
    let mut cert = margin(3_001, 2_000);
    cert.extend(certify(&cert, pid, &both));
    out.push(Case {
        name: "certified_approval",
        note: "votes approve; the attestors of both organizations (quorum 2 of 2) sign the same receipt",
        messages: cert.clone(),
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Certified, Status::Approved)),
    });
    let mut half = margin(3_001, 2_000);
    half.extend(certify(&half, pid, &[&k.node]));
    half.push(attest(
        &k.outsider,
        pid,
        Status::Approved,
        ContentId::of(b"x"),
        ContentId::of(b"y"),
        None,
    ));
    out.push(Case {
        name: "one_attestor_is_not_a_certificate",
        note: "only org A's attestor signed, and an outsider's receipt counts for nothing: provisional",
        messages: half,
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Provisional, Status::Approved)),
    });
    let mut equiv = cert.clone();
    let cr = resolve(
        &Case {
            name: "",
            note: "",
            messages: cert.clone(),
            proposal: pid,
            now: CLOSES,
            want: Status::Pending,
            want_reasons: vec![],
            anchor: Anchor::FirstPolicy,
            want_final: None,
        }
        .set(),
        &pid,
        Timestamp(CLOSES),
    )
    .expect("resolve");
    equiv.push(attest(
        &k.node_b,
        pid,
        Status::Rejected,
        ContentId::of(b"forged"),
        cr.counted_root,
        None,
    ));
    equiv.push(response(a(1), pid, Challenge, 10_000, CLOSES));
    out.push(Case {
        name: "certified_then_equivocations",
        note: "after the certificate, org B's attestor signs a rejection and a1 signs a second response dated at the close: both are evidence (attestor equivocation, responder equivocation); the votes now compute a rejection, the certified approval stands",
        messages: equiv,
        proposal: pid,
        now: CLOSES,
        want: Status::Rejected,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Certified, Status::Approved)),
    });

    // Four organizations, quorum 3: a contest, settled by a human.
    let four = policy(
        k,
        &PolicyOpts {
            four_orgs: true,
            revision: 4,
            ..PolicyOpts::default()
        },
    );
    let fprop = proposal(
        k,
        four.id,
        &PropOpts {
            label: "four orgs",
            ..PropOpts::default()
        },
    );
    let fid = fprop.id;
    let mut contest = vec![
        four.clone(),
        fprop.clone(),
        response(a(1), fid, Endorse, 9_000, t(1_000)),
        response(a(3), fid, Endorse, 9_000, t(1_000)),
    ];
    for (i, node) in [&k.node, &k.node_b, &k.node_c, &k.node_d]
        .into_iter()
        .enumerate()
    {
        let status = [
            Status::Approved,
            Status::Rejected,
            Status::Escalated,
            Status::Approved,
        ][i];
        contest.push(attest(
            node,
            fid,
            status,
            ContentId::of(&[i as u8]),
            ContentId::of(&[i as u8, 1]),
            None,
        ));
    }
    out.push(Case {
        name: "contested",
        note: "four organizations (quorum 3) sign four different results: for every result at least 3 organizations signed another, so none can be certified without 2 equivocations: escalated, a human decides",
        messages: contest.clone(),
        proposal: fid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Contested, Status::Escalated)),
    });
    let mut three = contest[..contest.len() - 1].to_vec();
    three.push(attest(
        &k.node_d,
        fid,
        Status::Approved,
        ContentId::of(&[0]),
        ContentId::of(&[0, 1]),
        None,
    ));
    out.push(Case {
        name: "split_not_contested",
        note: "org D signs the same result as org A: that result has 2 supporters, only 2 organizations signed another, so it is not contested (and not certified): provisional",
        messages: three,
        proposal: fid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Provisional, Status::Approved)),
    });
    let mut settle = contest.clone();
    settle.push(decision(&k.human1, fid, Verdict::Reject, CLOSES + 1));
    let settled_r = resolve(
        &Case {
            name: "",
            note: "",
            messages: settle.clone(),
            proposal: fid,
            now: CLOSES,
            want: Status::Pending,
            want_reasons: vec![],
            anchor: Anchor::FirstPolicy,
            want_final: None,
        }
        .set(),
        &fid,
        Timestamp(CLOSES + 10),
    )
    .expect("resolve");
    for node in [&k.node, &k.node_b, &k.node_c] {
        settle.push(receipt_for(node, fid, &settled_r));
    }
    out.push(Case {
        name: "contested_then_human_certified",
        note: "human1 rejects the contested proposal; three attestors certify the human's result (round 1): rejected, final; reasons gain `contested`",
        messages: settle,
        proposal: fid,
        now: CLOSES + 10,
        want: Status::Rejected,
        want_reasons: vec![Reason::Contested],
        anchor: Anchor::FirstPolicy,
        want_final: Some((State::Certified, Status::Rejected)),
    });

    // Invalid and missing policy.
    out.push(Case {
        name: "policy_missing",
        note: "the pinned policy is not in the set",
        messages: vec![std_prop.clone()],
        proposal: pid,
        now: CLOSES,
        want: Status::Pending,
        want_reasons: vec![Reason::PolicyMissing],
        anchor: Anchor::Id(std_policy.id),
        want_final: None,
    });
    let long = proposal(
        k,
        std_policy.id,
        &PropOpts {
            closes: T0 + 86_400_001,
            label: "long window",
            ..PropOpts::default()
        },
    );
    out.push(Case {
        name: "window_too_long",
        note: "closes_at - created_at = max_window_ms + 1: invalid at any time",
        messages: vec![std_policy.clone(), long.clone()],
        proposal: long.id,
        now: T0,
        want: Status::Invalid,
        want_reasons: vec![Reason::WindowOutOfBounds],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let short = proposal(
        k,
        std_policy.id,
        &PropOpts {
            closes: T0 + 999,
            label: "short window",
            ..PropOpts::default()
        },
    );
    out.push(Case {
        name: "window_too_short",
        note: "closes_at - created_at = min_window_ms - 1",
        messages: vec![std_policy.clone(), short.clone()],
        proposal: short.id,
        now: T0,
        want: Status::Invalid,
        want_reasons: vec![Reason::WindowOutOfBounds],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let other = policy(
        k,
        &PolicyOpts {
            domain: "fraud.other".into(),
            ..PolicyOpts::default()
        },
    );
    let mism = proposal(k, other.id, &PropOpts::default());
    out.push(Case {
        name: "policy_domain_mismatch",
        note: "the proposal pins a policy of another domain",
        messages: vec![other, mism.clone()],
        proposal: mism.id,
        now: T0,
        want: Status::Invalid,
        want_reasons: vec![Reason::PolicyDomainMismatch],
        anchor: Anchor::Id(std_policy.id),
        want_final: None,
    });

    // Domain lineage: the genesis, an amendment signed by both roots, one
    // signed by org A alone (below the genesis's amendment quorum of 2),
    // and a fork.
    let amend = |label: u64, before: u64, only_a: bool| {
        policy(
            k,
            &PolicyOpts {
                revision: 10 + label,
                issued_before: before,
                supersedes: Some(std_policy.id),
                only_org_a: only_a,
                margin: 1_000 + label as u16,
                ..PolicyOpts::default()
            },
        )
    };
    let amended = amend(0, 3_600_000, false);
    let on_amended = proposal(
        k,
        amended.id,
        &PropOpts {
            label: "under the amendment",
            ..PropOpts::default()
        },
    );
    out.push(Case {
        name: "lineage_amendment_in_force",
        note: "the genesis is amended (supersedes it, signed by both roots, issued an hour before created_at): a proposal pinning the amendment is decided under it",
        messages: vec![std_policy.clone(), amended.clone(), on_amended.clone(), response(a(1), on_amended.id, Endorse, 9_000, t(1_000)), response(a(3), on_amended.id, Endorse, 9_000, t(1_000))],
        proposal: on_amended.id,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "lineage_superseded_policy_not_in_force",
        note: "a proposal created after the amendment still pins the genesis: invalid",
        messages: vec![std_policy.clone(), amended.clone(), std_prop.clone()],
        proposal: pid,
        now: CLOSES,
        want: Status::Invalid,
        want_reasons: vec![Reason::PolicyNotInForce],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let weak = amend(1, 3_600_000, true);
    let on_weak = proposal(
        k,
        weak.id,
        &PropOpts {
            label: "under a weak amendment",
            ..PropOpts::default()
        },
    );
    out.push(Case {
        name: "lineage_amendment_below_quorum",
        note: "an amendment signed by org A alone (1 of the genesis's 2 required roots) is not in the lineage: a proposal pinning it is invalid",
        messages: vec![std_policy.clone(), weak.clone(), on_weak.clone()],
        proposal: on_weak.id,
        now: CLOSES,
        want: Status::Invalid,
        want_reasons: vec![Reason::PolicyNotInForce],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "lineage_rogue_policy_ignored",
        note: "the same weak amendment does not displace the genesis: a proposal pinning the genesis stays valid",
        messages: vec![std_policy.clone(), weak.clone(), std_prop.clone(), response(a(1), pid, Endorse, 9_000, t(1_000)), response(a(3), pid, Endorse, 9_000, t(1_000))],
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let fork_a = amend(2, 7_200_000, false);
    let fork_b = amend(3, 7_200_000, false);
    let (first, second) = if fork_a.id < fork_b.id {
        (fork_a, fork_b)
    } else {
        (fork_b, fork_a)
    };
    let on_second = proposal(
        k,
        second.id,
        &PropOpts {
            label: "under the losing fork",
            ..PropOpts::default()
        },
    );
    out.push(Case {
        name: "lineage_fork_smaller_id_followed",
        note: "two valid amendments of the genesis with the same issued_at: the chain follows the smaller id; a proposal pinning the other is invalid (the fork is evidence against both roots)",
        messages: vec![std_policy.clone(), first.clone(), second.clone(), on_second.clone()],
        proposal: on_second.id,
        now: CLOSES,
        want: Status::Invalid,
        want_reasons: vec![Reason::PolicyNotInForce],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out.push(Case {
        name: "no_trust_anchor",
        note: "the node trusts no genesis for the domain: pending, whatever the set holds",
        messages: with(vec![response(a(1), pid, Endorse, 9_000, t(1_000))]),
        proposal: pid,
        now: CLOSES,
        want: Status::Pending,
        want_reasons: vec![Reason::NoTrustAnchor],
        anchor: Anchor::None,
        want_final: None,
    });
    out.push(Case {
        name: "genesis_missing",
        note: "the proposal pins the amendment, which is present, but the genesis it amends is not: pending",
        messages: vec![amended.clone(), on_amended.clone()],
        proposal: on_amended.id,
        now: CLOSES,
        want: Status::Pending,
        want_reasons: vec![Reason::PolicyMissing],
        anchor: Anchor::Id(std_policy.id),
        want_final: None,
    });

    // Trust: an earlier proposal Q, reported failed before P was created.
    let q = proposal(
        k,
        std_policy.id,
        &PropOpts {
            created: T0 - 600_000,
            closes: T0 - 540_000,
            label: "earlier",
            ..PropOpts::default()
        },
    );
    let qid = q.id;
    let history = vec![
        q.clone(),
        response(a(1), qid, Endorse, 9_000, T0 - 590_000),
        response(a(3), qid, Challenge, 9_000, T0 - 590_000),
        response(a(2), qid, Endorse, 2_000, T0 - 590_000),
        response(a(4), qid, Endorse, 5_000, T0 - 590_000),
        response(a(4), qid, Challenge, 5_000, T0 - 590_000),
    ];
    let p_votes = vec![
        response(a(1), pid, Endorse, 10_000, t(1_000)),
        response(a(2), pid, Endorse, 10_000, t(1_000)),
        response(a(3), pid, Challenge, 10_000, t(1_000)),
        response(a(4), pid, Abstain, 10_000, t(1_000)),
    ];
    let mut m = with(history.clone());
    m.push(report(&k.reporter, qid, Outcome::Failed, T0 - 1));
    m.extend(p_votes.clone());
    out.push(Case {
        name: "trust_from_report",
        note: "Q failed (reported at created_at - 1): a1 (endorsed 9000) 4081, a2 (endorsed 2000) 4761, a3 (challenged 9000) 5918, a4 equivocated on Q 3333",
        messages: m.clone(),
        proposal: pid,
        now: CLOSES,
        want: Status::Escalated,
        want_reasons: vec![Reason::NoMargin],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut late = with(history.clone());
    late.push(report(&k.reporter, qid, Outcome::Failed, T0));
    late.extend(p_votes.clone());
    out.push(Case {
        name: "trust_report_at_created_at_ignored",
        note: "the same report at reported_at == created_at is not seen: only a4's equivocation penalty applies",
        messages: late,
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut conflict = m.clone();
    conflict.push(report(&k.reporter, qid, Outcome::Succeeded, T0 - 2));
    out.push(Case {
        name: "trust_conflicting_reports_void",
        note: "a second authorized report says Q succeeded: the outcome is void, only the equivocation penalty applies",
        messages: conflict,
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    let mut unauth = with(history);
    unauth.push(report(&k.outsider, qid, Outcome::Failed, T0 - 1));
    unauth.extend(p_votes);
    out.push(Case {
        name: "trust_unauthorized_reporter_ignored",
        note: "a report by a key not in the proposal's own policy reporters is ignored",
        messages: unauth,
        proposal: pid,
        now: CLOSES,
        want: Status::Approved,
        want_reasons: vec![],
        anchor: Anchor::FirstPolicy,
        want_final: None,
    });
    out
}

// ---------------------------------------------------------------- signatures (ZIP-215)

fn signature_vectors(k: &Keys) -> Vec<Value> {
    let mut out = Vec::new();
    let id = ContentId::of(b"acp test vector");
    let msg = signing_input(b"acp/v2/response", &id);
    let mut push = |name: &str, note: &str, key: [u8; 32], sig: [u8; 64]| {
        let (pk, s) = (PublicKey(key), Signature(sig));
        let item = VerifyItem {
            key: &pk,
            message: &msg,
            signature: &s,
        };
        let single = crypto::verify(&item);
        let batch = crypto::verify_batch(&[item, item]);
        assert_eq!(batch[0], single);
        out.push(json!({
            "name": name,
            "note": note,
            "public_key": hexs(&key),
            "message": hexs(&msg),
            "signature": hexs(&sig),
            "valid": single.is_ok(),
            "error": single.err().map(|e| e.code()),
            "weak_key": pk.is_weak(),
        }));
    };
    let honest = k.a(1).sign(b"acp/v2/response", &id);
    push(
        "honest",
        "an ordinary RFC 8032 signature",
        k.a(1).public().0,
        honest.0,
    );
    let mut s_plus_l = honest;
    add_group_order(&mut s_plus_l);
    push(
        "non_canonical_s",
        "s + L: rejected (ZIP-215 requires s < L)",
        k.a(1).public().0,
        s_plus_l.0,
    );
    let mut id_r = [0u8; 64];
    id_r[..32].copy_from_slice(&IDENTITY);
    push(
        "identity_key_identity_r_zero_s",
        "A = R = identity, s = 0: the cofactored equation holds for every message, so ACP refuses small-order keys (WeakKey)",
        IDENTITY,
        id_r,
    );
    // y = p + 1: a non-canonical encoding of the identity (y = 1).
    let mut noncanon = [0xffu8; 32];
    noncanon[0] = 0xee;
    noncanon[31] = 0x7f;
    let mut nc_sig = [0u8; 64];
    nc_sig[..32].copy_from_slice(&noncanon);
    push(
        "non_canonical_identity_encodings",
        "A and R encoded as y = p + 1 (non-canonical identity), s = 0: refused as a weak key (small order)",
        noncanon,
        nc_sig,
    );
    // Identity with the sign bit set (x = 0, sign 1): non-canonical.
    let mut signed_id = IDENTITY;
    signed_id[31] |= 0x80;
    let mut sid_sig = [0u8; 64];
    sid_sig[..32].copy_from_slice(&signed_id);
    push(
        "identity_with_sign_bit",
        "identity encoded with the x sign bit set, as A and R, s = 0: refused as a weak key (small order)",
        signed_id,
        sid_sig,
    );
    // Order-2 point (0, -1): y = p - 1.
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let mut mo_sig = [0u8; 64];
    mo_sig[..32].copy_from_slice(&minus_one);
    push(
        "order_two_key_and_r",
        "A = R = (0, -1) (order 2), s = 0: the cofactored equation holds, refused as a weak key",
        minus_one,
        mo_sig,
    );
    // Honest key, R replaced by R + T (T of order 2): cofactorless check
    // fails, cofactored check... k changes with R, so it fails too.
    let mut bad_r = honest;
    bad_r.0[..32].copy_from_slice(&not_a_point());
    push(
        "r_not_a_point",
        "R does not decode to a point",
        k.a(1).public().0,
        bad_r.0,
    );
    push(
        "key_not_a_point",
        "A does not decode to a point",
        not_a_point(),
        honest.0,
    );
    out
}

// ---------------------------------------------------------------- engine ingest

fn ingest_vectors(k: &Keys) -> Value {
    let pol = policy(k, &PolicyOpts::default());
    let prop = proposal(k, pol.id, &PropOpts::default());
    let r = response(k.a(1), prop.id, Stance::Endorse, 9_000, T0 + 1_000);
    let future = response(k.a(2), prop.id, Stance::Endorse, 9_000, T0 + 60_001);
    let steps: Vec<(Vec<u8>, &str, u64)> = vec![
        (pol.bytes.clone(), "peer", T0),
        (prop.bytes.clone(), "peer", T0),
        (r.bytes.clone(), "peer", T0 + 1_000),
        (r.bytes.clone(), "sync", T0 + 1_000),
        (future.bytes.clone(), "peer", T0),
        (future.bytes.clone(), "peer", T0 + 1),
        (vec![0u8; 3], "peer", T0 + 1),
        (
            response(&k.outsider, prop.id, Stance::Challenge, 9_000, T0 + 2_000).bytes,
            "peer",
            T0 + 2_000,
        ),
        (
            response(
                k.a(3),
                ContentId::of(b"not yet here"),
                Stance::Endorse,
                9_000,
                T0 + 2_000,
            )
            .bytes,
            "peer",
            T0 + 2_000,
        ),
    ];
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_anchor(DOMAIN, pol.id);
    let mut out = Vec::new();
    for (bytes, origin, now) in steps {
        let o = match origin {
            "sync" => Origin::Sync,
            _ => Origin::Peer,
        };
        let res = engine.ingest(&bytes, o, Timestamp(now));
        let expected = match &res {
            Ok(i) => json!({"result": "accepted", "id": i.id.to_string()}),
            Err(IngestError::Duplicate(id)) => json!({"result": "duplicate", "id": id.to_string()}),
            Err(IngestError::FromTheFuture { time, .. }) => {
                json!({"result": "from_the_future", "time": time.0})
            }
            Err(IngestError::Rejected(r)) => {
                let mut v = rejection_json(r);
                v["result"] = json!("rejected");
                v
            }
            Err(IngestError::NotAdmitted(r)) => {
                json!({"result": "not_admitted", "refusal": r.code()})
            }
            Err(IngestError::Pending { needs }) => {
                json!({"result": "pending", "needs": needs.to_string()})
            }
            Err(_) => json!({"result": "other"}),
        };
        out.push(json!({"hex": hexs(&bytes), "origin": origin, "now": now, "expected": expected}));
    }
    json!({
        "description": "One engine with the default configuration (max_future_skew_ms = 60000) and `anchor` as the genesis of `domain`, fed these messages in order (`now` is the engine's clock for each step). `orders`: engines fed the same set in different orders, with ticks in between, must all resolve like resolve() on the set.",
        "max_future_skew_ms": 60_000,
        "domain": DOMAIN,
        "anchor": pol.id.to_string(),
        "steps": out,
        "orders": engine_orders(k),
    })
}

/// The same set fed to engines in different orders. The first order delivers
/// an outcome report before the proposal it reports and that proposal's
/// votes, after the engine has already resolved a later proposal: the later
/// proposal's trust must still see the report once the votes arrive.
fn engine_orders(k: &Keys) -> Value {
    let pol = policy(k, &PolicyOpts::default());
    let q = proposal(
        k,
        pol.id,
        &PropOpts {
            created: T0 - 600_000,
            closes: T0 - 540_000,
            label: "earlier",
            ..PropOpts::default()
        },
    );
    let qa = response(k.a(1), q.id, Stance::Endorse, 9_000, T0 - 590_000);
    let qd = response(k.a(2), q.id, Stance::Endorse, 9_000, T0 - 590_000);
    let qd2 = response(k.a(2), q.id, Stance::Challenge, 9_000, T0 - 590_000);
    let rep = report(&k.reporter, q.id, Outcome::Failed, T0 - 1);
    let p = proposal(k, pol.id, &PropOpts::default());
    let votes = [
        response(k.a(1), p.id, Stance::Endorse, 10_000, T0 + 1_000),
        response(k.a(2), p.id, Stance::Endorse, 10_000, T0 + 1_000),
        response(k.a(3), p.id, Stance::Challenge, 10_000, T0 + 1_000),
        response(k.a(4), p.id, Stance::Abstain, 10_000, T0 + 1_000),
    ];
    let mut all = vec![pol, q, qa, qd, qd2, rep, p.clone()];
    all.extend(votes);
    // Indexes into `all`; `null` = tick.
    let orders: Vec<Vec<Option<usize>>> = vec![
        (0..all.len()).map(Some).collect(),
        vec![0, 5, 6, 7, 8, 9, 10]
            .into_iter()
            .map(Some)
            .chain([None, Some(3), Some(4), None, Some(1), None, Some(2), None])
            .collect(),
        vec![
            Some(10),
            Some(9),
            Some(8),
            Some(7),
            Some(6),
            Some(5),
            Some(4),
            Some(3),
            None,
            Some(2),
            Some(1),
            None,
            Some(0),
        ],
    ];
    let now = Timestamp(CLOSES + 10_000);
    let genesis = all[0].id;
    let mut set = MessageSet::new();
    set.set_anchor(DOMAIN, genesis);
    for m in &all {
        set.insert(m.clone());
    }
    let want = resolve(&set, &p.id, now).expect("resolve");
    for order in &orders {
        let mut e = Engine::new(EngineConfig::default());
        e.add_anchor(DOMAIN, genesis);
        for step in order {
            match step {
                Some(i) => {
                    // A message ahead of its policy or proposal waits
                    // for it and is admitted when it arrives.
                    match e.ingest(&all[*i].bytes, Origin::Peer, now) {
                        Ok(_) | Err(IngestError::Pending { .. }) => {}
                        Err(err) => panic!("order {order:?}: {err}"),
                    }
                }
                None => {
                    e.tick(now);
                }
            }
        }
        e.tick(now);
        assert_eq!(
            e.resolve(&p.id, now).expect("known").digest(),
            want.digest()
        );
    }
    json!({
        "messages": all.iter().map(|m| hexs(&m.bytes)).collect::<Vec<_>>(),
        "proposal": p.id.to_string(),
        "now": now.0,
        "anchor": genesis.to_string(),
        "orders": orders,
        "expected": {"status": want.status, "digest": want.digest().to_string()},
    })
}

// ---------------------------------------------------------------- sync

fn sync_vectors(k: &Keys) -> Value {
    let pol = policy(k, &PolicyOpts::default());
    let prop = proposal(k, pol.id, &PropOpts::default());
    let msgs = vec![
        pol.clone(),
        prop.clone(),
        response(k.a(1), prop.id, Stance::Endorse, 9_000, T0 + 1_000),
        response(k.a(3), prop.id, Stance::Challenge, 4_000, T0 + 3_600_000),
    ];
    let mut set = MessageSet::new();
    for m in &msgs {
        set.insert(m.clone());
    }
    let summary = Summary::of(&set, DOMAIN);
    let req = SyncRequest::Summary {
        domain: DOMAIN.into(),
    };
    let resp = SyncResponse::Summary(summary.clone());
    let bucket = summary.buckets.last().map_or(0, |b| b.bucket);
    let ids_req = SyncRequest::Ids {
        domain: DOMAIN.into(),
        bucket,
        after: None,
    };
    let ids_resp = acp_protocol::sync::answer(&set, &ids_req);
    let fetch = SyncRequest::Fetch {
        ids: vec![prop.id, ContentId::of(b"unknown")],
    };
    let fetch_resp = acp_protocol::sync::answer(&set, &fetch);
    let enc_req = |r: &SyncRequest| hexs(&r.to_bytes().expect("enc"));
    let enc_resp = |r: &SyncResponse| hexs(&r.to_bytes().expect("enc"));
    json!({
        "description": "Anti-entropy summary of a set, and the encodings of each request and its answer.",
        "messages": msgs.iter().map(|m| hexs(&m.bytes)).collect::<Vec<_>>(),
        "domain": DOMAIN,
        "summary": serde_json::to_value(&summary).expect("json"),
        "exchanges": [
            {"request": enc_req(&req), "response": enc_resp(&resp)},
            {"request": enc_req(&ids_req), "response": enc_resp(&ids_resp)},
            {"request": enc_req(&fetch), "response": enc_resp(&fetch_resp)},
        ],
    })
}

// ---------------------------------------------------------------- audit bundles

fn bundle_vectors(k: &Keys) -> Value {
    let pol = policy(k, &PolicyOpts::default());
    let prop = proposal(k, pol.id, &PropOpts::default());
    let mut msgs = vec![
        pol.clone(),
        prop.clone(),
        response(k.a(1), prop.id, Stance::Endorse, 9_000, T0 + 1_000),
        response(k.a(2), prop.id, Stance::Endorse, 6_000, T0 + 2_000),
        response(k.a(3), prop.id, Stance::Challenge, 3_000, T0 + 3_000),
    ];
    msgs.extend(certify(&msgs, prop.id, &[&k.node, &k.node_b]));
    // A member's receipt counts for no organization (a1 attests for none).
    let member_receipt = certify(&msgs, prop.id, &[k.a(1)]);
    msgs.extend(member_receipt);
    let bundle = |extra: &[SignedMessage], genesis: Option<ContentId>| {
        let mut set = MessageSet::new();
        set.set_anchor(DOMAIN, pol.id);
        for m in msgs.iter().chain(extra) {
            set.insert(m.clone());
        }
        let mut b = AuditBundle::collect(&set, &prop.id).expect("bundle");
        if let Some(g) = genesis {
            b.genesis = g;
        }
        b.to_bytes().expect("encode")
    };
    let good = bundle(&[], None);
    let report = verify_bundle(&good).expect("bundle verifies");
    assert!(report.resolution.finality.is_certified() && report.recomputed_matches_certificate);
    let late = response(k.a(4), prop.id, Stance::Challenge, 10_000, CLOSES);
    let with_late = bundle(std::slice::from_ref(&late), None);
    let late_report = verify_bundle(&with_late).expect("bundle verifies");
    assert!(
        late_report.resolution.finality.is_certified()
            && !late_report.recomputed_matches_certificate
    );
    let foreign = bundle(&[], Some(ContentId::of(b"another genesis")));
    assert!(matches!(
        verify_bundle(&foreign),
        Err(BundleError::NotInLineage(_))
    ));
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        verify_bundle(&tampered),
        Err(BundleError::Message { .. })
    ));
    let ok = |r: &acp_protocol::bundle::BundleReport| {
        json!({
            "result": "ok",
            "messages": r.messages,
            "status": r.resolution.status,
            "final_status": r.resolution.final_status(),
            "digest": r.resolution.digest().to_string(),
            "finality": serde_json::to_value(&r.resolution.finality).expect("json"),
            "recomputed_matches_certificate": r.recomputed_matches_certificate,
            "receipts_ignored": r.receipts_ignored,
        })
    };
    json!({
        "description": "Audit bundles (version 2) of one proposal, verified under the genesis they carry: verify_bundle must give `expected`.",
        "bundles": [
            {
                "name": "valid_certified",
                "note": "both attestors certify the approval; a member's receipt is ignored",
                "hex": hexs(&good),
                "expected": ok(&report),
            },
            {
                "name": "certified_with_late_response",
                "note": "a4's challenge dated at closes_at is in the bundle: the certificate stands, the bundle no longer recomputes its digest",
                "hex": hexs(&with_late),
                "expected": ok(&late_report),
            },
            {
                "name": "foreign_genesis",
                "note": "the bundle names a genesis that is not the root of the proposal's policy",
                "hex": hexs(&foreign),
                "expected": {"result": "not_in_lineage"},
            },
            {
                "name": "tampered_message",
                "note": "the last byte of the bundle (inside the last message's signature) flipped",
                "hex": hexs(&tampered),
                "expected": {"result": "message"},
            },
        ],
    })
}

// ---------------------------------------------------------------- admission

/// The admission decision for candidates against one set: the genesis and
/// its amendment, a proposal, and a policy nobody authorized.
fn admission_vectors(k: &Keys) -> Value {
    let pol = policy(k, &PolicyOpts::default());
    let amended = policy(
        k,
        &PolicyOpts {
            revision: 2,
            issued_before: 3_600_000,
            supersedes: Some(pol.id),
            ..PolicyOpts::default()
        },
    );
    let weak = policy(
        k,
        &PolicyOpts {
            revision: 3,
            issued_before: 3_600_000,
            supersedes: Some(pol.id),
            only_org_a: true,
            ..PolicyOpts::default()
        },
    );
    let rogue_genesis = policy(
        k,
        &PolicyOpts {
            revision: 7,
            ..PolicyOpts::default()
        },
    );
    let prop = proposal(k, amended.id, &PropOpts::default());
    let state = vec![
        pol.clone(),
        amended.clone(),
        prop.clone(),
        rogue_genesis.clone(),
    ];
    let mut set = MessageSet::new();
    set.set_anchor(DOMAIN, pol.id);
    for m in &state {
        set.insert(m.clone());
    }
    let unknown_parent = policy(
        k,
        &PolicyOpts {
            revision: 4,
            issued_before: 60_000,
            supersedes: Some(ContentId::of(b"unknown policy")),
            ..PolicyOpts::default()
        },
    );
    let mut outsider_prop = proposal_body(k, amended.id, &PropOpts::default());
    outsider_prop.proposer = k.outsider.public();
    let outsider_prop = sign(Body::Proposal(outsider_prop), &[&k.outsider]);
    let on_rogue = proposal(k, rogue_genesis.id, &PropOpts::default());
    let unknown_pol = proposal(k, ContentId::of(b"unknown policy"), &PropOpts::default());
    let mut wrong_domain = response_body(k.a(1), prop.id, Stance::Endorse, 9_000, T0 + 1_000);
    wrong_domain.domain = "fraud.other".into();
    let wrong_domain = sign(Body::Response(wrong_domain), &[k.a(1)]);
    let other_domain_pol = policy(
        k,
        &PolicyOpts {
            domain: "fraud.other".into(),
            ..PolicyOpts::default()
        },
    );
    let r = resolve(&set, &prop.id, Timestamp(CLOSES)).expect("resolve");
    let candidates: Vec<(&str, SignedMessage)> = vec![
        ("amendment_with_quorum", amended.clone()),
        ("amendment_below_quorum", weak),
        ("rogue_genesis", rogue_genesis.clone()),
        ("amendment_of_unknown_policy", unknown_parent),
        ("policy_of_ungoverned_domain", other_domain_pol),
        (
            "proposal_by_member",
            proposal(
                k,
                amended.id,
                &PropOpts {
                    label: "by member",
                    ..PropOpts::default()
                },
            ),
        ),
        ("proposal_by_outsider", outsider_prop),
        ("proposal_pinning_rogue_policy", on_rogue),
        ("proposal_pinning_unknown_policy", unknown_pol),
        (
            "response_by_member",
            response(k.a(1), prop.id, Stance::Endorse, 9_000, T0 + 1_000),
        ),
        (
            "response_by_outsider",
            response(&k.outsider, prop.id, Stance::Endorse, 9_000, T0 + 1_000),
        ),
        (
            "response_to_unknown_proposal",
            response(
                k.a(1),
                ContentId::of(b"unknown proposal"),
                Stance::Endorse,
                9_000,
                T0 + 1_000,
            ),
        ),
        ("response_in_another_domain", wrong_domain),
        (
            "decision_by_listed_human",
            decision(&k.human1, prop.id, Verdict::Approve, CLOSES + 1),
        ),
        (
            "decision_by_outsider",
            decision(&k.outsider, prop.id, Verdict::Approve, CLOSES + 1),
        ),
        (
            "report_by_reporter",
            report(&k.reporter, prop.id, Outcome::Succeeded, CLOSES + 1),
        ),
        (
            "report_by_outsider",
            report(&k.outsider, prop.id, Outcome::Succeeded, CLOSES + 1),
        ),
        ("receipt_by_attestor", receipt_for(&k.node_b, prop.id, &r)),
        ("receipt_by_member", receipt_for(k.a(2), prop.id, &r)),
        ("receipt_by_outsider", receipt_for(&k.outsider, prop.id, &r)),
    ];
    let cases: Vec<Value> = candidates
        .into_iter()
        .map(|(name, m)| {
            let expected = match acp_protocol::admission::admit(&set, &m.id, m.body()) {
                acp_protocol::admission::Admission::Admit => json!({"result": "admit"}),
                acp_protocol::admission::Admission::Wait(id) => {
                    json!({"result": "wait", "needs": id.to_string()})
                }
                acp_protocol::admission::Admission::Refuse(r) => {
                    json!({"result": "refuse", "refusal": r.code()})
                }
            };
            json!({"name": name, "hex": hexs(&m.bytes), "expected": expected})
        })
        .collect();
    json!({
        "description": "admit(set, message): the set holds `messages` and trusts `anchor` as the genesis of `domain` (no other domain has an anchor). `admit` = store and forward; `wait` = keep until `needs` arrives; `refuse` = never store or forward.",
        "domain": DOMAIN,
        "anchor": pol.id.to_string(),
        "messages": state.iter().map(|m| hexs(&m.bytes)).collect::<Vec<_>>(),
        "cases": cases,
    })
}

// ---------------------------------------------------------------- main

fn write(dir: &Path, name: &str, v: &Value) {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    fs::write(dir.join(name), s).expect("write vector file");
    println!("wrote docs/test-vectors/{name}");
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors");
    fs::create_dir_all(&dir).expect("create docs/test-vectors");
    let k = Keys::new();
    write(&dir, "keys.json", &keys_json(&k));

    // Accepted messages of every kind.
    let pol = policy(&k, &PolicyOpts::default());
    let prop = proposal(&k, pol.id, &PropOpts::default());
    let mut sup = proposal_body(&k, pol.id, &PropOpts::default());
    sup.supersedes = Some(prop.id);
    sup.action.payload = "{\"card\":\"4242\",\"merchant\":\"m-17\",\"amount\":1200}".into();
    let sup = sign(Body::Proposal(sup), &[&k.proposer]);
    let resp = response(k.a(1), prop.id, Stance::Endorse, 9_000, T0 + 1_000);
    let mut with_ev = response_body(k.a(3), prop.id, Stance::Challenge, 4_250, T0 + 2_000);
    with_ev.reasoning = "merchant is a known travel agency; pattern matches holiday spend".into();
    with_ev.evidence = vec!["acp:evidence/merchant-profile".into(), "ticket#991".into()];
    let with_ev = sign(Body::Response(with_ev), &[k.a(3)]);
    let abstain = response(k.a(2), prop.id, Stance::Abstain, 0, T0 + 3_000);
    let dec = decision(&k.human1, prop.id, Verdict::Reject, CLOSES + 1);
    let rep = report(
        &k.reporter,
        prop.id,
        Outcome::Succeeded,
        CLOSES + 86_400_000,
    );
    let mut set = MessageSet::new();
    for m in [&pol, &prop, &resp, &with_ev, &abstain] {
        set.insert(m.clone());
    }
    let res = resolve(&set, &prop.id, Timestamp(CLOSES)).expect("resolve");
    let receipt = sign(
        Body::Receipt(Receipt {
            node: k.node.public(),
            domain: DOMAIN.into(),
            proposal: prop.id,
            closes_at: Timestamp(CLOSES),
            status: res.status,
            resolution: res.digest(),
            counted_root: res.counted_root,
            human_decision: None,
        }),
        &[&k.node],
    );
    // An amendment: org B hands its seat to org C and approves the change
    // without being an organization of the new policy.
    let mut amendment = policy_body(
        &k,
        &PolicyOpts {
            revision: 2,
            issued_before: 3_600_000,
            supersedes: Some(pol.id),
            ..PolicyOpts::default()
        },
    );
    let b_root = k.org_b.public();
    amendment
        .organizations
        .iter_mut()
        .filter(|o| o.root == b_root)
        .for_each(|o| {
            o.root = k.org_c.public();
            o.name = "Initech Card Services".into();
            o.attestor = k.node_c.public();
        });
    let mut sorted = amendment.organizations.clone();
    sorted.sort_by_key(|o| o.root);
    // Member organization indexes follow the new order.
    let remap: Vec<u16> = amendment
        .organizations
        .iter()
        .map(|o| sorted.iter().position(|x| x.root == o.root).unwrap_or(0) as u16)
        .collect();
    for m in &mut amendment.members {
        m.organization = remap[usize::from(m.organization)];
    }
    amendment.organizations = sorted;
    amendment.approvers = vec![b_root];
    let amendment = sign(Body::Policy(amendment), &[&k.org_a, &k.org_b, &k.org_c]);
    let messages = vec![
        message_json(
            "policy",
            "the genesis: two organizations (each naming its attestor), five members, two humans, one reporter, quorums 2 of 2; signed by both roots in key order",
            &pol,
        ),
        message_json(
            "policy_amendment",
            "supersedes the genesis: org B leaves, org C joins; org B's root approves as an approver; signed by the roots of A, B and C in key order",
            &amendment,
        ),
        message_json("proposal", "pins the policy above", &prop),
        message_json(
            "proposal_supersedes",
            "supersedes = Some(id of the proposal above)",
            &sup,
        ),
        message_json("response_endorse", "a1 endorses at 9000 bps", &resp),
        message_json(
            "response_challenge_with_evidence",
            "a3 challenges with two evidence references",
            &with_ev,
        ),
        message_json("response_abstain", "a2 abstains", &abstain),
        message_json("human_decision", "human1 rejects after the close", &dec),
        message_json(
            "outcome_report",
            "the reporter says the action succeeded",
            &rep,
        ),
        message_json(
            "receipt",
            "node's receipt of the resolution at closes_at of the four messages above",
            &receipt,
        ),
    ];
    write(
        &dir,
        "messages.json",
        &json!({
            "description": "Valid messages of every kind: canonical bytes, content id, signing inputs, signatures and the decoded body (keys and ids as hex/multihash text, enums in snake_case).",
            "messages": messages,
        }),
    );

    let rejected: Vec<Value> = rejections(&k, &pol, &prop)
        .into_iter()
        .map(|r| {
            let err = decode_message(&r.bytes).expect_err(r.name);
            let mut v = json!({"name": r.name, "note": r.note, "expected": rejection_json(&err)});
            if r.fill {
                v["fill"] = json!({"byte": r.bytes[0], "len": r.bytes.len()});
            } else {
                v["hex"] = json!(hexs(&r.bytes));
            }
            v
        })
        .collect();
    write(
        &dir,
        "rejections.json",
        &json!({
            "description": "Byte strings every implementation must reject, with the first failing check (SPEC section 6). `fill` means `len` copies of `byte`.",
            "rejections": rejected,
        }),
    );

    let mut resolutions = Vec::new();
    for mut c in cases(&k) {
        if c.name == "human_decision_tie_by_id" {
            // The winner depends on the ids; record whichever the rule picks.
            let r = resolve(&c.set(), &c.proposal, Timestamp(c.now)).expect("resolve");
            assert!(r.human_decision.is_some());
            c.want = r.status;
        }
        resolutions.push(resolution_json(&c).0);
    }
    write(
        &dir,
        "resolutions.json",
        &json!({
            "description": "resolve(set of `messages`, `proposal`, `now`). Every message is valid. `resolution_hex` is the canonical encoding of the whole resolution and `digest` its content id. Tallies are u64 and may exceed 2^53.",
            "policy_defaults": {
                "quorum_margin_bps": 2_000,
                "min_participation_bps": 5_000,
                "low_confidence_bps": 2_000,
                "high_stakes": 100_000_000u64,
                "min_window_ms": 1_000,
                "max_window_ms": 86_400_000,
                "authority_bps": 10_000,
                "created_at": T0,
                "closes_at": CLOSES,
            },
            "cases": resolutions,
        }),
    );
    write(
        &dir,
        "signatures.json",
        &json!({
            "description": "Ed25519 under ZIP-215: single and batch verification must both give `valid`.",
            "vectors": signature_vectors(&k),
        }),
    );
    write(&dir, "ingest.json", &ingest_vectors(&k));
    write(&dir, "sync.json", &sync_vectors(&k));
    write(&dir, "bundles.json", &bundle_vectors(&k));
    write(&dir, "admission.json", &admission_vectors(&k));
}
