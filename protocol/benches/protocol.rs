//! Micro-benchmarks of the protocol core. Run: `cargo bench -p acp-protocol`.
//!
//! Figures that matter are ratios within one run (e.g. ingest vs raw verify),
//! because the machines this runs on are noisy.

use std::hint::black_box;

use acp_protocol::build::{PolicyBuilder, default_rules, outcome_report, proposal, response};
use acp_protocol::crypto::{self, VerifyItem, signing_input};
use acp_protocol::engine::{Engine, EngineConfig, Origin};
use acp_protocol::trust::trust_table;
use acp_protocol::{
    ContentId, Keypair, MessageSet, Outcome, SignedMessage, Stance, Timestamp, decode_message,
    resolve,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn key(i: u32) -> Keypair {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

struct Domain {
    agents: Vec<Keypair>,
    reporter: Keypair,
    policy: SignedMessage,
    proposal: SignedMessage,
}

/// A domain with `n` members split over four organizations. Policies on the
/// wire hold at most 20 000 members; larger ones are built in memory only,
/// to measure how `resolve` scales.
fn domain(n: u32) -> Domain {
    let orgs: Vec<Keypair> = (0..4).map(|i| key(1_000_000 + i)).collect();
    let agents: Vec<Keypair> = (0..n).map(key).collect();
    let reporter = key(2_000_000);
    let mut b = PolicyBuilder::new("fraud.detection").reporter(&reporter.public());
    for (i, o) in orgs.iter().enumerate() {
        b = b.organization(o, &format!("org{i}"), 4_000);
    }
    for (i, a) in agents.iter().enumerate() {
        b = b.member(&a.public(), (i % 4) as u16, 5_000 + (i % 5000) as u16);
    }
    let refs: Vec<&Keypair> = orgs.iter().collect();
    let policy = b.rules(default_rules()).sign(&refs).expect("policy");
    let proposal = proposal(
        &key(3_000_000),
        "fraud.detection",
        policy.id,
        "payment.block",
        r#"{"payment":"p-1","amount_cents":125000}"#,
        Timestamp(1_000),
        Timestamp(61_000),
    )
    .expect("proposal");
    Domain {
        agents,
        reporter,
        policy,
        proposal,
    }
}

fn votes(d: &Domain) -> Vec<SignedMessage> {
    d.agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let stance = if i % 3 == 0 {
                Stance::Challenge
            } else {
                Stance::Endorse
            };
            response(
                a,
                &d.proposal,
                stance,
                4_000 + (i % 6_000) as u16,
                "The merchant category and velocity match a known card-testing pattern.",
                Timestamp(2_000 + i as u64),
            )
            .expect("vote")
        })
        .collect()
}

fn codec_and_ids(c: &mut Criterion) {
    let d = domain(4);
    let vote = votes(&d).remove(0);
    let mut g = c.benchmark_group("message");
    g.throughput(Throughput::Bytes(vote.bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| acp_protocol::codec::encode(black_box(&vote.envelope)))
    });
    g.bench_function("decode_canonical_unverified", |b| {
        b.iter(|| acp_protocol::decode_unverified(black_box(&vote.bytes)))
    });
    g.bench_function("decode_and_verify", |b| {
        b.iter(|| decode_message(black_box(&vote.bytes)))
    });
    g.bench_function("content_id", |b| b.iter(|| vote.body().content_id()));
    g.finish();

    // The hash choice: SHA-256 (ContentId::of) vs BLAKE3 over message sizes.
    let mut g = c.benchmark_group("hash");
    for size in [256usize, 1024, 4096, 65536] {
        let data = vec![0xa5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("blake3", size), &data, |b, d| {
            b.iter(|| blake3::hash(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("sha256", size), &data, |b, d| {
            b.iter(|| ContentId::of(black_box(d)))
        });
    }
    g.finish();
}

fn signatures(c: &mut Criterion) {
    let k = key(1);
    let id = ContentId::of(b"bench");
    let msg = signing_input(b"acp/v1/response", &id);
    let sig = k.sign(b"acp/v1/response", &id);
    let pk = k.public();
    let mut g = c.benchmark_group("signature");
    g.bench_function("sign", |b| {
        b.iter(|| k.sign(b"acp/v1/response", black_box(&id)))
    });
    g.bench_function("verify_single", |b| {
        b.iter(|| {
            crypto::verify(&VerifyItem {
                key: &pk,
                message: &msg,
                signature: &sig,
            })
        })
    });
    for n in [16usize, 64, 256] {
        let keys: Vec<Keypair> = (0..n as u32).map(key).collect();
        let ids: Vec<ContentId> = (0..n).map(|i| ContentId::of(&i.to_le_bytes())).collect();
        let msgs: Vec<Vec<u8>> = ids.iter().map(|i| signing_input(b"t", i)).collect();
        let sigs: Vec<_> = keys
            .iter()
            .zip(&ids)
            .map(|(k, i)| k.sign(b"t", i))
            .collect();
        let pks: Vec<_> = keys.iter().map(Keypair::public).collect();
        let items: Vec<VerifyItem<'_>> = (0..n)
            .map(|i| VerifyItem {
                key: &pks[i],
                message: &msgs[i],
                signature: &sigs[i],
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("verify_batch", n), &items, |b, items| {
            b.iter(|| crypto::verify_batch(black_box(items)))
        });
    }
    // What the engine sees: a domain's 25 agents signing again and again,
    // their keys already in its cache.
    let keys: Vec<Keypair> = (0..25u32).map(key).collect();
    let pks: Vec<_> = keys.iter().map(Keypair::public).collect();
    let ids: Vec<ContentId> = (0..256usize)
        .map(|i| ContentId::of(&i.to_le_bytes()))
        .collect();
    let msgs: Vec<Vec<u8>> = ids.iter().map(|i| signing_input(b"t", i)).collect();
    let sigs: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| keys[i % 25].sign(b"t", id))
        .collect();
    let items: Vec<VerifyItem<'_>> = (0..256)
        .map(|i| VerifyItem {
            key: &pks[i % 25],
            message: &msgs[i],
            signature: &sigs[i],
        })
        .collect();
    let mut cache = crypto::KeyCache::new();
    cache.verify_batch(&items);
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_single_cached_key", |b| {
        b.iter(|| cache.verify(black_box(&items[0])))
    });
    g.throughput(Throughput::Elements(256));
    g.bench_function("verify_batch_25_signers_cached/256", |b| {
        b.iter(|| cache.verify_batch(black_box(&items)))
    });
    g.finish();
}

fn resolution(c: &mut Criterion) {
    let mut g = c.benchmark_group("resolve");
    g.sample_size(20);
    for n in [10u32, 1_000, 100_000] {
        let d = domain(n);
        let mut set = MessageSet::new();
        set.insert(d.policy.clone());
        set.insert(d.proposal.clone());
        for v in votes(&d) {
            set.insert(v);
        }
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("responses", n), &set, |b, set| {
            b.iter(|| resolve(set, &d.proposal.id, Timestamp(61_000)))
        });
        if n == 1_000 {
            let mut with_report = set.clone();
            with_report.insert(
                outcome_report(&d.reporter, &d.proposal, Outcome::Failed, Timestamp(70_000))
                    .expect("report"),
            );
            g.bench_function("trust_table_1000_reported_votes", |b| {
                b.iter(|| {
                    trust_table(
                        &with_report,
                        "fraud.detection",
                        Timestamp(80_000),
                        &[d.reporter.public()],
                    )
                })
            });
        }
    }
    g.finish();
}

/// An engine holding the domain's policy and proposal, ready for its votes.
fn engine_with_proposal(d: &Domain) -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.ingest(&d.policy.bytes, Origin::Peer, Timestamp(3_000))
        .expect("policy");
    e.ingest(&d.proposal.bytes, Origin::Peer, Timestamp(3_000))
        .expect("proposal");
    e
}

fn engine_ingest(c: &mut Criterion) {
    let d = domain(1_000);
    let vs = votes(&d);
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(vs.len() as u64));
    g.bench_function("ingest_1000_single", |b| {
        b.iter(|| {
            let mut e = engine_with_proposal(&d);
            for v in &vs {
                e.ingest(&v.bytes, Origin::Peer, Timestamp(3_000))
                    .expect("vote");
            }
            e.tick(Timestamp(3_000))
        })
    });
    g.bench_function("ingest_1000_batched_64", |b| {
        b.iter(|| {
            let mut e = engine_with_proposal(&d);
            for chunk in vs.chunks(64) {
                let items: Vec<(&[u8], Origin)> = chunk
                    .iter()
                    .map(|v| (v.bytes.as_slice(), Origin::Peer))
                    .collect();
                e.ingest_batch(&items, Timestamp(3_000));
            }
            e.tick(Timestamp(3_000))
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    codec_and_ids,
    signatures,
    resolution,
    engine_ingest
);
criterion_main!(benches);
