//! Writes a seed corpus of real, valid inputs into `fuzz/corpus/<target>/`
//! so the fuzzer starts from messages that pass every check and reaches the
//! engine's deep paths (resolution, trust, equivocation, receipts, human
//! decisions) instead of stopping at the decoder.
//!
//! Run from `fuzz/`: `cargo run --features seeds --bin seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use acp_protocol::build::{
    PolicyBuilder, default_rules, human_decision, outcome_report, proposal, response,
};
use acp_protocol::bundle::AuditBundle;
use acp_protocol::engine::{Effect, Engine, EngineConfig, Origin};
use acp_protocol::evidence::EquivocationEvidence;
use acp_protocol::sync::{SyncRequest, SyncResponse};
use acp_protocol::{ContentId, Keypair, Outcome, SignedMessage, Stance, Timestamp, Verdict};
use acp_protocol_fuzz::{
    FLAG_QUERY, FLAG_TICK, MODE_BATCH, MODE_UNVERIFIED, MODE_VERIFIED, encode,
};

const DOMAIN: &str = "loans.retail";

fn key(n: u8) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[31] = 0xac;
    Keypair::from_seed(seed)
}

struct Corpus {
    root: PathBuf,
    count: usize,
}

impl Corpus {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        self.count += 1;
    }
}

/// A timeline of messages, each delivered at its own signed time.
struct Timeline {
    msgs: Vec<(Timestamp, SignedMessage)>,
}

impl Timeline {
    fn push(&mut self, at: Timestamp, m: &SignedMessage) {
        self.msgs.push((at, m.clone()));
    }

    /// Records for `engine_ingest`: advance to each message's time, ingest
    /// it in `mode`, tick; finally step past every deadline and query.
    fn records(&self, start: u64, mode: u8, end: u64) -> Vec<u8> {
        let mut now = start;
        let mut recs: Vec<(u8, u32, &[u8])> = Vec::new();
        for (at, m) in &self.msgs {
            let dt = at.0.saturating_sub(now);
            now += dt;
            recs.push((mode | FLAG_TICK, u32::try_from(dt).expect("dt"), &m.bytes));
        }
        let dt = end.saturating_sub(now);
        recs.push((
            mode | FLAG_TICK | FLAG_QUERY,
            u32::try_from(dt).expect("dt"),
            &[],
        ));
        encode(start, &recs)
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut c = Corpus { root, count: 0 };

    let orgs = [key(200), key(201)];
    let agents: Vec<Keypair> = (1..=4).map(key).collect();
    let proposer = key(100);
    let human = key(150);
    let reporter = key(151);
    // Organization attestors: the node whose receipts join the seeds, and
    // the fuzzed engine's own key, so both sign receipts that count.
    let fuzzed = Keypair::from_seed([0x5e; 32]);
    let mut b = PolicyBuilder::new(DOMAIN)
        .organization_attested(&orgs[0], "Credit", 10_000, &key(60).public())
        .organization_attested(&orgs[1], "Compliance", 6_000, &fuzzed.public())
        .proposer(&proposer.public())
        .human(&human.public())
        .reporter(&reporter.public())
        .rules(acp_protocol::DecisionRules {
            high_stakes: Some(1_000_000),
            ..default_rules()
        });
    for (i, a) in agents.iter().enumerate() {
        b = b.member(&a.public(), (i % 2) as u16, 10_000 - 1_000 * i as u16);
    }
    let policy = b.sign(&[&orgs[0], &orgs[1]]).expect("policy");
    let t = |ms: u64| Timestamp(1_000_000 + ms);
    let ok = |r: Result<SignedMessage, _>| r.expect("message");

    // P1: decided by the members, then its outcome reported (a trust input).
    let p1 = ok(proposal(
        &proposer,
        DOMAIN,
        policy.id,
        "loan.approve",
        r#"{"amount":25000}"#,
        t(0),
        t(60_000),
    ));
    let r1 = [
        ok(response(
            &agents[0],
            &p1,
            Stance::Endorse,
            9_000,
            "income verified",
            t(1_000),
        )),
        ok(response(
            &agents[1],
            &p1,
            Stance::Endorse,
            8_000,
            "history ok",
            t(2_000),
        )),
        ok(response(
            &agents[2],
            &p1,
            Stance::Challenge,
            6_000,
            "ratio high",
            t(3_000),
        )),
        ok(response(
            &agents[3],
            &p1,
            Stance::Abstain,
            5_000,
            "",
            t(4_000),
        )),
    ];
    let rep1 = ok(outcome_report(&reporter, &p1, Outcome::Failed, t(100_000)));
    // P2, after the report: an equivocating agent (two responses).
    let p2 = ok(proposal(
        &proposer,
        DOMAIN,
        policy.id,
        "loan.approve",
        r#"{"amount":9000}"#,
        t(200_000),
        t(260_000),
    ));
    let r2 = [
        ok(response(
            &agents[0],
            &p2,
            Stance::Endorse,
            9_000,
            "first",
            t(201_000),
        )),
        ok(response(
            &agents[0],
            &p2,
            Stance::Challenge,
            9_000,
            "second",
            t(202_000),
        )),
        ok(response(
            &agents[1],
            &p2,
            Stance::Challenge,
            7_000,
            "no",
            t(203_000),
        )),
        ok(response(
            &agents[2],
            &p2,
            Stance::Endorse,
            7_000,
            "yes",
            t(204_000),
        )),
        // Issued after the close: must not count.
        ok(response(
            &agents[3],
            &p2,
            Stance::Endorse,
            10_000,
            "late",
            t(270_000),
        )),
    ];
    // P3: too little participation, escalated, then decided by a human.
    let p3 = ok(proposal(
        &proposer,
        DOMAIN,
        policy.id,
        "loan.approve",
        r#"{"amount":1}"#,
        t(300_000),
        t(310_000),
    ));
    let r3 = ok(response(
        &agents[3],
        &p3,
        Stance::Endorse,
        2_000,
        "unsure",
        t(301_000),
    ));
    let hd3 = ok(human_decision(
        &human,
        &p3,
        Verdict::Approve,
        "checked by hand",
        t(320_000),
    ));

    let mut tl = Timeline { msgs: Vec::new() };
    tl.push(t(0), &policy);
    tl.push(t(0), &p1);
    for (i, r) in r1.iter().enumerate() {
        tl.push(t(1_000 * (i as u64 + 1)), r);
    }
    tl.push(t(100_000), &rep1);
    tl.push(t(200_000), &p2);
    for r in &r2 {
        tl.push(r.body().time(), r);
    }
    tl.push(t(300_000), &p3);
    tl.push(t(301_000), &r3);
    tl.push(t(320_000), &hd3);

    // Another node's view: its receipts become messages for the seeds too.
    let mut other = Engine::new(EngineConfig {
        receipt_key: Some(key(60)),
        ..EngineConfig::default()
    });
    other.add_anchor(DOMAIN, policy.id);
    let mut receipts = Vec::new();
    for (at, m) in &tl.msgs {
        other
            .ingest(&m.bytes, Origin::Local, *at)
            .expect("valid seed message");
        for e in other.tick(*at) {
            if let Effect::Store { bytes, .. } = e {
                receipts.push((*at, bytes));
            }
        }
    }
    let end = t(400_000);
    for e in other.tick(end) {
        if let Effect::Store { bytes, .. } = e {
            receipts.push((end, bytes));
        }
    }
    let receipt_msgs: Vec<(Timestamp, SignedMessage)> = receipts
        .iter()
        .map(|(at, b)| (*at, acp_protocol::decode_message(b).expect("own receipt")))
        .collect();

    // decode_message: every message as it travels.
    let mut all: Vec<&SignedMessage> = tl.msgs.iter().map(|(_, m)| m).collect();
    all.extend(receipt_msgs.iter().map(|(_, m)| m));
    for m in &all {
        c.write("decode_message", &m.id.to_string()[..16], &m.bytes);
    }

    // engine_ingest: the whole story in each mode, with and without receipts.
    let mut with_receipts = Timeline {
        msgs: tl.msgs.clone(),
    };
    for (at, m) in &receipt_msgs {
        with_receipts.push(*at, m);
    }
    with_receipts.msgs.sort_by_key(|(at, _)| *at);
    let start = t(0).0 - 1_000;
    for (name, mode) in [
        ("verified", MODE_VERIFIED),
        ("unverified", MODE_UNVERIFIED),
        ("batch", MODE_BATCH),
    ] {
        c.write(
            "engine_ingest",
            &format!("story-{name}"),
            &tl.records(start, mode, end.0),
        );
        c.write(
            "engine_ingest",
            &format!("story-receipts-{name}"),
            &with_receipts.records(start, mode, end.0),
        );
    }
    // Out of order: responses before their proposal, policy last.
    let mut shuffled = Timeline {
        msgs: tl.msgs.clone(),
    };
    shuffled.msgs.reverse();
    let latest = shuffled
        .msgs
        .iter()
        .map(|(at, _)| *at)
        .max()
        .expect("messages");
    for (at, _) in &mut shuffled.msgs {
        *at = latest;
    }
    c.write(
        "engine_ingest",
        "reversed",
        &shuffled.records(start, MODE_UNVERIFIED, end.0),
    );

    // Sync messages.
    let ids: Vec<ContentId> = all.iter().map(|m| m.id).collect();
    let summary = other.summary(DOMAIN);
    let bucket = summary.buckets.first().map_or(0, |b| b.bucket);
    let reqs = [
        SyncRequest::Summary {
            domain: DOMAIN.into(),
        },
        SyncRequest::Ids {
            domain: DOMAIN.into(),
            bucket,
            after: None,
        },
        SyncRequest::Ids {
            domain: DOMAIN.into(),
            bucket,
            after: Some(ids[1]),
        },
        SyncRequest::Fetch { ids: ids.clone() },
    ];
    for (i, req) in reqs.iter().enumerate() {
        c.write(
            "sync_request",
            &i.to_string(),
            &req.to_bytes().expect("request"),
        );
        let resp = other.answer(req);
        c.write(
            "sync_response",
            &i.to_string(),
            &resp.to_bytes().expect("response"),
        );
    }
    let refused = SyncResponse::Refused("at most 256 ids per fetch".into());
    c.write(
        "sync_response",
        "refused",
        &refused.to_bytes().expect("response"),
    );

    // Audit bundles and equivocation evidence from the other node's set.
    for p in [&p1, &p2, &p3] {
        let bundle = AuditBundle::collect(other.set(), &p.id).expect("bundle");
        c.write(
            "audit_bundle",
            &p.id.to_string()[..16],
            &bundle.to_bytes().expect("bundle"),
        );
    }
    let ev =
        EquivocationEvidence::collect(other.set(), &p2.id, &agents[0].public()).expect("evidence");
    c.write(
        "equivocation_evidence",
        "p2-agent1",
        &ev.to_bytes().expect("evidence"),
    );

    println!("wrote {} seed files under {}", c.count, c.root.display());
}
